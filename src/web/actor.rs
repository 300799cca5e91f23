//! The signed-in user as the application layer knows them.

use crate::app::Actor;
use crate::web::guard::CurrentUser;

impl From<&CurrentUser> for Actor {
    fn from(user: &CurrentUser) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role: user.role,
            time_zone: user.time_zone,
        }
    }
}
