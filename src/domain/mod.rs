//! Pure types and rules: no web, no SQL. Unit tested in place.

pub mod admin_input;
pub mod api_token;
pub mod approval;
pub mod cast;
pub mod catalog;
pub mod connect;
pub mod csv_import;
pub mod ending;
pub mod event;
pub mod grant;
pub mod names;
pub mod provision;
pub mod provisioner;
pub mod role;
pub mod seed;
pub mod spreadsheet;
pub mod ssh_keys;
pub mod sso_mapping;
pub mod status;
pub mod target_access;
pub mod ticket_check;
pub mod ticket_sample;
pub mod tz;
pub mod webhook;
pub mod wizard;
