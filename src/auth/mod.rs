//! Who is asking: passwords, the typed session, the signed-in user, role guards and CSRF.

pub mod cache;
pub mod csrf;
pub mod guard;
pub mod login_token;
pub mod password;
pub mod second_factor;
pub mod session;
pub mod sso;
pub mod store;

pub use guard::CurrentUser;
