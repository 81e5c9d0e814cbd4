//! Who is asking, and the rules of passwords and tokens.

pub mod password;
pub mod tokens;
pub mod viewer;

pub use viewer::Viewer;
