//! The devices' Query and Mutation roots.

use async_graphql::{Context, ID, Object};

use super::{
    service::{self, NewDevice},
    types::{Device, PushSetup, RegisterDeviceInput},
};
use crate::{error::FieldResult, graphql::ContextExt};

#[derive(Default)]
pub struct DevicesQuery;

#[Object]
impl DevicesQuery {
    /// The Web Push key and the platforms this server pushes to.
    async fn push_setup(&self, ctx: &Context<'_>) -> PushSetup {
        let push = &ctx.services().push;
        PushSetup {
            web_push_public_key: push.web_push_public_key(),
            platforms: push.platforms().into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Default)]
pub struct DevicesMutation;

#[Object]
impl DevicesMutation {
    /// Registers a phone or browser for the viewer's push notices;
    /// registering the same token again updates it.
    async fn register_device(
        &self,
        ctx: &Context<'_>,
        input: RegisterDeviceInput,
    ) -> FieldResult<Device> {
        let services = ctx.services();
        let device = NewDevice {
            platform: input.platform.into(),
            token: input.token,
            name: input.name,
            web_push_p256dh: input.web_push_p256dh,
            web_push_auth: input.web_push_auth,
        };
        Ok(Device(
            service::register(ctx.db(), &services.config, &ctx.viewer(), device).await?,
        ))
    }

    /// Removes one of the viewer's devices; `false` if they have none by that id.
    async fn unregister_device(&self, ctx: &Context<'_>, id: ID) -> FieldResult<bool> {
        Ok(service::unregister(ctx.db(), &ctx.viewer(), &id).await?)
    }
}
