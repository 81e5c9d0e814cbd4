//! Devices: the phones and browsers a member's push notices go to
//! (`registerDevice`, `unregisterDevice`, `User.devices`), and `pushSetup`,
//! what clients need to subscribe. Delivery is `notices::push`.

pub mod resolvers;
pub mod service;
pub mod types;

pub use resolvers::{DevicesMutation, DevicesQuery};
