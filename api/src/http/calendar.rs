//! The calendar files (`meets/calendar.rs`), served as `text/calendar` to
//! calendar apps, which fetch them without a bearer token: each address
//! carries its own proof. Anything that does not check out is a plain 404.

use axum::{
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use crate::{error::ApiResult, meets::calendar};

#[derive(Deserialize)]
pub struct Signed {
    viewer: Option<Uuid>,
    key: Option<String>,
}

/// `GET /calendar/meets/{id}.ics[?viewer=…&key=…]`
pub async fn meet(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(signed): Query<Signed>,
) -> Response {
    let services = &state.services;
    let Some(meet_id) = ics_id(&file) else {
        return not_found();
    };
    let signed = match (&signed.viewer, &signed.key) {
        (Some(viewer), Some(key)) => Some((*viewer, key.as_str())),
        (None, None) => None,
        _ => return not_found(),
    };
    respond(
        calendar::meet_file(
            &services.db,
            &services.config,
            &services.keys,
            meet_id,
            signed,
        )
        .await,
    )
}

/// `GET /calendar/feed/{user}/{token}.ics`
pub async fn feed(
    State(state): State<AppState>,
    Path((user, file)): Path<(String, String)>,
) -> Response {
    let services = &state.services;
    let (Ok(user), Some(token)) = (Uuid::parse_str(&user), file.strip_suffix(".ics")) else {
        return not_found();
    };
    respond(calendar::feed_file(&services.db, &services.config, &services.keys, user, token).await)
}

fn ics_id(file: &str) -> Option<Uuid> {
    file.strip_suffix(".ics")
        .and_then(|id| Uuid::parse_str(id).ok())
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such calendar").into_response()
}

fn respond(file: ApiResult<Option<String>>) -> Response {
    match file {
        Ok(Some(body)) => (
            [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
            body,
        )
            .into_response(),
        Ok(None) => not_found(),
        Err(err) => {
            tracing::error!(error = %err, "serving a calendar");
            (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response()
        }
    }
}
