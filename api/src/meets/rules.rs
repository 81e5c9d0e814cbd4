//! Pure rules of meets: input validation, time windows (answering,
//! check-in), distances.

use chrono::{DateTime, Duration, Utc};
use entity::{
    attendances::ArrivalState,
    meets::{self, MeetStatus},
};

use crate::{
    error::{ApiError, ApiResult},
    validate,
};

/// A meet without an end counts as ended this long after its start.
pub const DEFAULT_LENGTH: Duration = Duration::hours(4);
/// No meet lasts longer: so a meet that has not ended started at most this
/// long ago, and the feed's "not ended yet" is a range of the start-time
/// index rather than a filter over every meet ever held.
pub const MAX_LENGTH: Duration = Duration::days(7);
/// How far in the past a new meet may start (a meet called "now").
pub const START_GRACE: Duration = Duration::hours(1);
/// Check-in opens this long before the start.
pub const CHECK_IN_OPENS: Duration = Duration::hours(1);
pub const MAX_CAPACITY: i32 = 10_000;
/// An attendee may say they are on their way from this long before the start.
pub const ON_MY_WAY_OPENS: Duration = Duration::hours(3);
/// The longest ETA an attendee on their way may give, in minutes.
pub const ETA_MAX_MINUTES: i32 = 240;
/// The longest `hopingToMeet`.
pub const HOPING_TO_MEET_MAX: usize = 140;
/// The longest region a meet may name (and a region filter compare).
pub const REGION_MAX: usize = 80;

/// How a region is stored for matching and compared: trimmed, lower-case;
/// blank is none. Case-insensitive filters (the feed, `meetAnnounced`) and
/// the stored key must agree.
pub fn region_key(region: Option<&str>) -> Option<String> {
    region
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_lowercase)
}

pub fn effective_end(starts_at: DateTime<Utc>, ends_at: Option<DateTime<Utc>>) -> DateTime<Utc> {
    ends_at.unwrap_or_else(|| starts_at + DEFAULT_LENGTH)
}

pub fn title(raw: &str) -> ApiResult<String> {
    validate::text("title", raw, 1, 120)
}

pub fn venue_name(raw: &str) -> ApiResult<String> {
    validate::text("venueName", raw, 1, 120)
}

pub fn capacity(capacity: Option<i32>) -> ApiResult<Option<i32>> {
    match capacity {
        Some(c) if !(1..=MAX_CAPACITY).contains(&c) => Err(ApiError::bad_input(
            "capacity",
            format!("capacity must be 1 to {MAX_CAPACITY}, or null for no limit"),
        )),
        other => Ok(other),
    }
}

/// Latitude and longitude come together or not at all, within range.
pub fn coordinates(latitude: Option<f64>, longitude: Option<f64>) -> ApiResult<Option<(f64, f64)>> {
    match (latitude, longitude) {
        (None, None) => Ok(None),
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(ApiError::bad_input(
                    "latitude",
                    "latitude must be between -90 and 90",
                ));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(ApiError::bad_input(
                    "longitude",
                    "longitude must be between -180 and 180",
                ));
            }
            Ok(Some((lat, lon)))
        }
        (Some(_), None) => Err(ApiError::bad_input(
            "longitude",
            "latitude and longitude go together",
        )),
        (None, Some(_)) => Err(ApiError::bad_input(
            "latitude",
            "latitude and longitude go together",
        )),
    }
}

/// `startsAt` not more than an hour in the past (checked for new meets and
/// when the time changes); `endsAt` after `startsAt`, at most `MAX_LENGTH`
/// later.
pub fn times(
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    check_start: bool,
) -> ApiResult<()> {
    validate::instant("startsAt", starts_at)?;
    if let Some(end) = ends_at {
        validate::instant("endsAt", end)?;
    }
    if check_start && starts_at < now - START_GRACE {
        return Err(ApiError::bad_input(
            "startsAt",
            "startsAt may be at most one hour in the past",
        ));
    }
    if ends_at.is_some_and(|end| end <= starts_at) {
        return Err(ApiError::bad_input(
            "endsAt",
            "endsAt must be after startsAt",
        ));
    }
    if ends_at.is_some_and(|end| end - starts_at > MAX_LENGTH) {
        return Err(ApiError::bad_input(
            "endsAt",
            "a meet lasts at most seven days",
        ));
    }
    Ok(())
}

pub fn time_zone(raw: Option<String>) -> ApiResult<Option<String>> {
    match raw.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(zone) => zone
            .parse::<chrono_tz::Tz>()
            .map(|tz| Some(tz.name().to_owned()))
            .map_err(|_| {
                ApiError::bad_input("timeZone", format!("{zone:?} is not an IANA time zone"))
            }),
    }
}

const EARTH_RADIUS_KM: f64 = 6371.0088;
const KM_PER_DEGREE_LATITUDE: f64 = 111.195;

/// Great-circle distance (haversine), in km.
pub fn distance_km(from: (f64, f64), to: (f64, f64)) -> f64 {
    let (lat1, lon1) = (from.0.to_radians(), from.1.to_radians());
    let (lat2, lon2) = (to.0.to_radians(), to.1.to_radians());
    let a = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
}

/// How far a circle reaches: its latitude range, and its half-width in
/// longitude (`None` when it takes in a pole or reaches around the globe).
fn reach(center: (f64, f64), radius_km: f64) -> ((f64, f64), Option<f64>) {
    let dlat = radius_km / KM_PER_DEGREE_LATITUDE;
    let lat_range = ((center.0 - dlat).max(-90.0), (center.0 + dlat).min(90.0));
    let widest_cos = lat_range.0.abs().max(lat_range.1.abs()).to_radians().cos();
    if widest_cos < 1e-6 {
        return (lat_range, None);
    }
    let dlon = radius_km / (KM_PER_DEGREE_LATITUDE * widest_cos);
    (lat_range, (dlon < 180.0).then_some(dlon))
}

/// A latitude/longitude box holding every point within `radius_km` of
/// `center`, for an index to narrow by before the exact distance. `None` for
/// longitude when the box would wrap the whole globe (near a pole, or huge).
pub fn bounding_box(center: (f64, f64), radius_km: f64) -> ((f64, f64), Option<(f64, f64)>) {
    let (lat_range, dlon) = reach(center, radius_km);
    // Crossing the antimeridian: keep it simple and correct, filter by latitude only.
    let lon = dlon
        .map(|d| (center.1 - d, center.1 + d))
        .filter(|(lo, hi)| *lo >= -180.0 && *hi <= 180.0);
    (lat_range, lon)
}

/// A grid over the globe, as the database files each meet with coordinates
/// in it (migration m20261126_000005, a generated column per grid): the
/// latitude band × `stride` + the longitude band, wrapped so that 180° and
/// -180° share a band. Bands are `1 / per_degree` degrees wide.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// The generated column holding each meet's cell.
    pub column: &'static str,
    per_degree: f64,
    stride: i64,
}

/// 0.1° (about 11 km north to south).
const FINE_GRID: Grid = Grid {
    column: "cell_fine",
    per_degree: 10.0,
    stride: 10_000,
};
/// 1°, for circles too wide for the fine grid.
const COARSE_GRID: Grid = Grid {
    column: "cell_coarse",
    per_degree: 1.0,
    stride: 1_000,
};
/// The most cells a radius search asks for: wider circles fall back to the
/// box over the start-time range (they take in most meets anyway).
const MAX_CELLS: usize = 100;

impl Grid {
    /// The same arithmetic, in the same order, as the generated columns.
    fn lat_band(self, latitude: f64) -> i64 {
        ((latitude + 90.0) * self.per_degree).floor() as i64
    }

    /// Before wrapping: 180° is one band past the last.
    fn lon_band_unwrapped(self, longitude: f64) -> i64 {
        ((longitude + 180.0) * self.per_degree).floor() as i64
    }

    fn lon_bands(self) -> i64 {
        (360.0 * self.per_degree) as i64
    }

    /// The cell the database stores for a meet at `point`.
    #[cfg(test)]
    fn cell(self, point: (f64, f64)) -> i64 {
        self.lat_band(point.0) * self.stride + self.lon_band_unwrapped(point.1) % self.lon_bands()
    }
}

/// The cells of the finest grid that covers every point within `radius_km`
/// of `center` in at most `MAX_CELLS` cells; `None` when no grid does.
pub fn covering_cells(center: (f64, f64), radius_km: f64) -> Option<(Grid, Vec<i64>)> {
    // A hair wider than the circle's box, so that rounding in a wrapped
    // longitude cannot leave out the cell of a point on the box's edge.
    const PAD_DEGREES: f64 = 1e-9;
    let ((lat_lo, lat_hi), dlon) = reach(center, radius_km);
    let dlon = dlon? + PAD_DEGREES;
    let (lon_lo, lon_hi) = (center.1 - dlon, center.1 + dlon);
    // The box's longitudes as segments within -180..=180.
    let segments = if lon_lo < -180.0 {
        vec![(-180.0, lon_hi), (lon_lo + 360.0, 180.0)]
    } else if lon_hi > 180.0 {
        vec![(lon_lo, 180.0), (-180.0, lon_hi - 360.0)]
    } else {
        vec![(lon_lo, lon_hi)]
    };
    [FINE_GRID, COARSE_GRID].into_iter().find_map(|grid| {
        let lat_bands = grid.lat_band(lat_lo)..=grid.lat_band(lat_hi);
        let mut lon_bands = std::collections::BTreeSet::new();
        for (lo, hi) in &segments {
            let bands = grid.lon_band_unwrapped(*lo)..=grid.lon_band_unwrapped(*hi);
            lon_bands.extend(bands.map(|band| band % grid.lon_bands()));
        }
        let count = lat_bands.clone().count() * lon_bands.len();
        (count <= MAX_CELLS).then(|| {
            let cells = lat_bands
                .flat_map(|lat| lon_bands.iter().map(move |lon| lat * grid.stride + lon))
                .collect();
            (grid, cells)
        })
    })
}

pub fn near(latitude: f64, longitude: f64, radius_km: f64) -> ApiResult<()> {
    coordinates(Some(latitude), Some(longitude))?;
    if !(radius_km > 0.0 && radius_km <= 20_000.0) {
        return Err(ApiError::bad_input(
            "radiusKm",
            "radiusKm must be above 0 and at most 20000",
        ));
    }
    Ok(())
}

/// Whether check-in is open at `now`.
pub fn check_in_open(
    starts_at: DateTime<Utc>,
    effective_end_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    now >= starts_at - CHECK_IN_OPENS && now < effective_end_at
}

/// A meet takes answers and invitations until it is cancelled or over.
pub fn require_open(meet: &meets::Model, now: DateTime<Utc>) -> ApiResult<()> {
    if meet.status == MeetStatus::Cancelled {
        return Err(ApiError::Conflict("this meet is cancelled".into()));
    }
    if meet.effective_end_at <= now {
        return Err(ApiError::Conflict("this meet has ended".into()));
    }
    Ok(())
}

/// A go / no-go meet still waiting for enough people.
pub fn is_tentative(meet: &meets::Model) -> bool {
    meet.status == MeetStatus::Scheduled
        && meet.minimum_going.is_some()
        && meet.confirmed_at.is_none()
}

/// A go / no-go condition: a minimum and a deadline together or neither;
/// the minimum from 2 to the capacity, the deadline after now and before
/// the start.
pub fn go_no_go(
    minimum_going: Option<i32>,
    decide_by: Option<DateTime<Utc>>,
    capacity: Option<i32>,
    starts_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let (minimum, decide_by) = match (minimum_going, decide_by) {
        (None, None) => return Ok(()),
        (Some(minimum), Some(decide_by)) => (minimum, decide_by),
        (Some(_), None) => {
            return Err(ApiError::bad_input(
                "decideBy",
                "a minimum needs a decideBy deadline",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::bad_input(
                "minimumGoing",
                "a decideBy deadline needs a minimumGoing",
            ));
        }
    };
    let most = capacity.unwrap_or(MAX_CAPACITY);
    if !(2..=most).contains(&minimum) {
        return Err(ApiError::bad_input(
            "minimumGoing",
            format!("minimumGoing must be from 2 to {most} (the capacity)"),
        ));
    }
    validate::instant("decideBy", decide_by)?;
    if decide_by <= now || decide_by >= starts_at {
        return Err(ApiError::bad_input(
            "decideBy",
            "decideBy must be after now and before the meet starts",
        ));
    }
    Ok(())
}

/// Whether the night is over for arrivals: the meet ended or was cancelled.
pub fn arrivals_over(meet: &meets::Model, now: DateTime<Utc>) -> bool {
    meet.status == MeetStatus::Cancelled || meet.effective_end_at <= now
}

/// An attendance's arrival as it reads at `now`: once the night is over,
/// whoever was still here has left and whoever was on their way is not
/// coming. Read this way, no job has to rewrite rows when a meet ends.
pub fn arrival_now(stored: ArrivalState, over: bool) -> ArrivalState {
    match (stored, over) {
        (ArrivalState::Here, true) => ArrivalState::Left,
        (ArrivalState::OnMyWay, true) => ArrivalState::NotYet,
        (state, _) => state,
    }
}

/// Whether moving from `current` to `wanted` at `now` is allowed, and
/// whether it changes anything (`false`: the same state again). The meet is
/// open (not cancelled, not ended) and the attendee GOING; an ETA goes with
/// ON_MY_WAY only.
pub fn arrival_change(
    current: ArrivalState,
    wanted: ArrivalState,
    eta_minutes: Option<i32>,
    starts_at: DateTime<Utc>,
    effective_end_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> ApiResult<bool> {
    use ArrivalState::*;
    if let Some(eta) = eta_minutes {
        if wanted != OnMyWay {
            return Err(ApiError::bad_input(
                "etaMinutes",
                "an ETA goes with ON_MY_WAY only",
            ));
        }
        if !(0..=ETA_MAX_MINUTES).contains(&eta) {
            return Err(ApiError::bad_input(
                "etaMinutes",
                format!("etaMinutes must be 0 to {ETA_MAX_MINUTES}"),
            ));
        }
    }
    if now >= effective_end_at {
        return Err(ApiError::Conflict("this meet has ended".into()));
    }
    match (current, wanted) {
        (Here, Here) | (Left, Left) | (NotYet, NotYet) => Ok(false),
        (_, OnMyWay) if now < starts_at - ON_MY_WAY_OPENS => Err(ApiError::Conflict(
            "on my way opens three hours before the start".into(),
        )),
        (Here, OnMyWay) => Err(ApiError::Conflict(
            "you are here already; say LEFT first".into(),
        )),
        // A new ETA is news too.
        (_, OnMyWay) => Ok(true),
        (_, Here) if !check_in_open(starts_at, effective_end_at, now) => Err(ApiError::Conflict(
            "check-in is open from one hour before the start until the meet ends".into(),
        )),
        (_, Here) => Ok(true),
        (Here, Left) => Ok(true),
        (_, Left) => Err(ApiError::Conflict(
            "only someone who is here can leave".into(),
        )),
        (OnMyWay, NotYet) => Ok(true),
        (_, NotYet) => Err(ApiError::Conflict(
            "NOT_YET only takes back an ON_MY_WAY".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_move_through_the_night() {
        use ArrivalState::*;
        let start = Utc::now() + Duration::hours(2);
        let end = start + DEFAULT_LENGTH;
        let early = start - Duration::hours(4);
        let before = start - Duration::hours(2);
        let during = start + Duration::minutes(30);
        let change = |from, to, eta, now| arrival_change(from, to, eta, start, end, now);
        assert!(change(NotYet, OnMyWay, Some(20), before).unwrap());
        assert!(
            change(OnMyWay, OnMyWay, Some(5), before).unwrap(),
            "a new ETA"
        );
        assert!(change(NotYet, OnMyWay, None, early).is_err(), "too early");
        assert!(
            change(NotYet, Here, None, before).is_err(),
            "check-in not open"
        );
        assert!(change(OnMyWay, Here, None, during).unwrap());
        assert!(!change(Here, Here, None, during).unwrap(), "same again");
        assert!(change(Here, OnMyWay, None, during).is_err());
        assert!(change(Here, Left, None, during).unwrap());
        assert!(change(Left, Here, None, during).unwrap(), "back again");
        assert!(change(NotYet, Left, None, during).is_err());
        assert!(change(OnMyWay, NotYet, None, during).unwrap());
        assert!(change(Left, NotYet, None, during).is_err());
        assert!(
            change(NotYet, Here, Some(5), during).is_err(),
            "ETA without ON_MY_WAY"
        );
        assert!(change(NotYet, OnMyWay, Some(241), before).is_err());
        assert!(change(NotYet, OnMyWay, Some(-1), before).is_err());
        assert!(change(OnMyWay, Here, None, end).is_err(), "ended");
    }

    #[test]
    fn the_night_ends_without_a_job() {
        use ArrivalState::*;
        assert_eq!(arrival_now(Here, true), Left);
        assert_eq!(arrival_now(OnMyWay, true), NotYet);
        assert_eq!(arrival_now(Left, true), Left);
        assert_eq!(arrival_now(Here, false), Here);
        assert_eq!(arrival_now(OnMyWay, false), OnMyWay);
    }

    #[test]
    fn distances() {
        // Toronto (Union Station) to Hamilton (GO Centre): about 60 km.
        let d = distance_km((43.6453, -79.3806), (43.2533, -79.8697));
        assert!((57.0..62.0).contains(&d), "{d}");
        assert!(distance_km((43.0, -79.0), (43.0, -79.0)) < 1e-9);
    }

    #[test]
    fn bounding_box_contains_the_circle() {
        let center = (43.65, -79.38);
        let ((lat_lo, lat_hi), lon) = bounding_box(center, 10.0);
        let (lon_lo, lon_hi) = lon.unwrap();
        for bearing in 0..36 {
            let angle = (bearing as f64 * 10.0).to_radians();
            // A point ~9.9 km away in each direction must be inside the box.
            let p = (
                center.0 + 9.9 / 111.195 * angle.cos(),
                center.1 + 9.9 / (111.195 * center.0.to_radians().cos()) * angle.sin(),
            );
            assert!(distance_km(center, p) < 10.0);
            assert!(p.0 >= lat_lo && p.0 <= lat_hi && p.1 >= lon_lo && p.1 <= lon_hi);
        }
        assert!(bounding_box((89.99, 0.0), 50.0).1.is_none());
    }

    /// Every point within the radius lies in a cell of the cover, across
    /// the antimeridian too, and the cover stays within `MAX_CELLS`.
    #[test]
    fn covering_cells_hold_the_circle() {
        for (center, radius) in [
            ((43.65, -79.38), 10.0),
            ((43.65, -79.38), 25.0),
            ((43.65, -79.38), 250.0),
            ((-17.7, 179.95), 30.0),
            ((-17.7, -179.95), 30.0),
            ((0.0, 180.0), 5.0),
            ((60.0, 10.0), 0.01),
        ] {
            let (grid, cells) = covering_cells(center, radius).expect("a cover");
            assert!(cells.len() <= MAX_CELLS, "{center:?} {radius}");
            let fine = radius < 100.0;
            assert_eq!(grid == FINE_GRID, fine, "{center:?} {radius}");
            for step in 0..720 {
                let angle = (f64::from(step) / 2.0).to_radians();
                for fraction in [0.5, 0.999] {
                    let d = radius * fraction / 111.195;
                    let lat = center.0 + d * angle.cos();
                    let mut lon = center.1 + d * angle.sin() / center.0.to_radians().cos();
                    lon = (lon + 180.0).rem_euclid(360.0) - 180.0;
                    if distance_km(center, (lat, lon)) <= radius {
                        assert!(
                            cells.contains(&grid.cell((lat, lon))),
                            "{center:?} {radius}: ({lat}, {lon})"
                        );
                    }
                }
            }
        }
        assert!(covering_cells((43.65, -79.38), 2_000.0).is_none());
        assert!(covering_cells((89.9, 0.0), 50.0).is_none());
    }

    #[test]
    fn validations() {
        let now = Utc::now();
        assert!(times(now - Duration::minutes(59), None, now, true).is_ok());
        assert!(times(now - Duration::minutes(61), None, now, true).is_err());
        assert!(times(now, Some(now), now, true).is_err());
        assert!(times(now, Some(now + MAX_LENGTH), now, true).is_ok());
        assert!(
            times(
                now,
                Some(now + MAX_LENGTH + Duration::seconds(1)),
                now,
                true
            )
            .is_err()
        );
        let far = "+262142-12-31T23:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert!(
            times(far, None, now, true).is_err(),
            "no overflow, no panic"
        );
        assert!(times(now, Some(far), now, true).is_err());
        assert!(capacity(Some(0)).is_err());
        assert!(capacity(Some(10_001)).is_err());
        assert!(capacity(None).is_ok());
        assert!(coordinates(Some(1.0), None).is_err());
        assert!(coordinates(Some(91.0), Some(0.0)).is_err());
        assert!(title(&"x".repeat(121)).is_err());
        assert!(time_zone(Some("Mars/Olympus".into())).is_err());
        assert_eq!(
            time_zone(Some("America/Toronto".into()))
                .unwrap()
                .as_deref(),
            Some("America/Toronto")
        );
    }

    #[test]
    fn check_in_window() {
        let start = Utc::now();
        let end = effective_end(start, None);
        assert!(check_in_open(start, end, start - Duration::minutes(59)));
        assert!(!check_in_open(start, end, start - Duration::minutes(61)));
        assert!(check_in_open(start, end, start + Duration::hours(3)));
        assert!(!check_in_open(start, end, end));
    }
}
