//! Admin > Users > New user / Edit user: details, role, time zone, groups; disable and
//! enable; reset password. An administrator cannot remove their own admin role or disable
//! themselves.

use super::picker::{self, Picker};
use super::revocation::{Ask, end_or_ask, flash_ended};
use super::{done, gone, invalid, refused};
use crate::app::Actor;
use crate::app::users::{self, Creation, Disabling};
use crate::db;
use crate::db::users::AccountFields;
use crate::domain::admin_input::{self, FieldErrors};
use crate::domain::names::{DisplayName, NewPassword, Username};
use crate::domain::role::Role;
use crate::domain::tz::TimeZone;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::{AppError, AppResult};
use crate::web::form::{Fields, Form, first};
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;
use uuid::Uuid;

const ROLES: [(&str, &str); 3] = [
    ("user", "User"),
    ("admin", "Administrator"),
    ("auditor", "Auditor"),
];

/// Facts about an existing account shown beside its form.
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub disabled: bool,
    pub locked: bool,
    pub has_password: bool,
    pub is_self: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/user_form.html")]
pub struct FormPage {
    chrome: Chrome,
    account: Option<Account>,
    username: String,
    display_name: String,
    email: String,
    role: String,
    time_zone: String,
    roles: [(&'static str, &'static str); 3],
    zones: Vec<&'static str>,
    groups: Picker,
    errors: FieldErrors,
}

/// The user form as posted: the new user's form, or an account's (which has no username
/// or password).
#[derive(Debug, Default, serde::Deserialize)]
pub struct UserForm {
    #[serde(default, deserialize_with = "first")]
    username: String,
    /// The initial password (new user).
    #[serde(default, deserialize_with = "first")]
    password: String,
    #[serde(default, deserialize_with = "first")]
    display_name: String,
    #[serde(default, deserialize_with = "first")]
    email: String,
    #[serde(default, deserialize_with = "first")]
    role: String,
    #[serde(default, deserialize_with = "first")]
    time_zone: String,
    /// Ticked groups.
    #[serde(default)]
    groups: Vec<String>,
    /// The groups list's search box.
    #[serde(default, deserialize_with = "first")]
    groups_q: String,
    /// `search` from the list's Search button, else Save.
    #[serde(default, deserialize_with = "first")]
    go: String,
    /// How many sessions the administrator agreed to end.
    #[serde(default, deserialize_with = "first")]
    confirm: String,
}

impl UserForm {
    fn groups(&self) -> Vec<Uuid> {
        admin_input::ids(self.groups.iter().map(String::as_str))
    }

    /// An account's form as fields, posted again by the "end these sessions?" page.
    fn echo(&self) -> Fields {
        Fields::of(
            &[
                ("display_name", &self.display_name),
                ("email", &self.email),
                ("role", &self.role),
                ("time_zone", &self.time_zone),
                ("groups_q", &self.groups_q),
                ("confirm", &self.confirm),
            ],
            &[("groups", &self.groups)],
        )
    }
}

/// Set password on an account.
#[derive(serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default, deserialize_with = "first")]
    password: String,
}

async fn page(
    state: &AppState,
    chrome: Chrome,
    account: Option<Account>,
    f: &UserForm,
    errors: FieldErrors,
) -> AppResult<FormPage> {
    let ticked = f.groups();
    let search = picker::bounded(&f.groups_q);
    let choices = db::groups::choices(&state.db, &search, &ticked, picker::SHOWN).await?;
    Ok(FormPage {
        chrome: chrome.at("admin"),
        username: account
            .as_ref()
            .map_or_else(|| f.username.clone(), |a| a.username.clone()),
        account,
        display_name: f.display_name.clone(),
        email: f.email.clone(),
        role: f.role.clone(),
        time_zone: f.time_zone.clone(),
        roles: ROLES,
        zones: TimeZone::all_names(),
        groups: Picker::new("groups", "Groups", &search, choices, &ticked)
            .with_error(errors.get("groups")),
        errors,
    })
}

pub async fn new(State(state): State<AppState>, chrome: Chrome) -> AppResult<FormPage> {
    let f = UserForm {
        role: "user".into(),
        time_zone: state.settings.default_time_zone.clone(),
        ..UserForm::default()
    };
    page(&state, chrome, None, &f, FieldErrors::default()).await
}

async fn account(
    state: &AppState,
    admin: &CurrentUser,
    id: Uuid,
) -> AppResult<Option<(Account, UserForm)>> {
    let Some(u) = db::users::get(&state.db, id).await? else {
        return Ok(None);
    };
    let groups = db::users::group_ids(&state.db, id).await?;
    let f = UserForm {
        display_name: u.display_name,
        email: u.email.unwrap_or_default(),
        role: match u.role {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
        .into(),
        time_zone: u.time_zone,
        groups: groups.iter().map(Uuid::to_string).collect(),
        ..UserForm::default()
    };
    Ok(Some((
        Account {
            id,
            username: u.username,
            disabled: u.disabled,
            locked: u.locked,
            has_password: u.has_password,
            is_self: id == admin.id,
        },
        f,
    )))
}

pub async fn edit(
    State(state): State<AppState>,
    chrome: Chrome,
    admin: CurrentUser,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    match account(&state, &admin, id).await? {
        Some((a, f)) => Ok(page(&state, chrome, Some(a), &f, FieldErrors::default())
            .await?
            .into_response()),
        None => gone(&session, "user", "/admin/users").await,
    }
}

/// The fields both forms share, checked.
struct Checked {
    display_name: DisplayName,
    email: Option<String>,
    role: Role,
    time_zone: String,
    groups: Vec<Uuid>,
}

async fn check(
    state: &AppState,
    f: &UserForm,
    errors: &mut FieldErrors,
    fallback_name: &str,
) -> AppResult<Checked> {
    let typed = f.display_name.trim();
    let display_name = match DisplayName::parse(if typed.is_empty() {
        fallback_name
    } else {
        typed
    }) {
        Ok(d) => d,
        Err(e) => {
            errors.add("display_name", admin_input::capitalise(&e.to_string()));
            DisplayName::parse("-").map_err(AppError::internal)?
        }
    };
    let email = admin_input::email(errors, "email", &f.email);
    let role = Role::parse(&f.role).unwrap_or_else(|| {
        errors.add("role", "Choose User, Administrator or Auditor.");
        Role::User
    });
    let time_zone = match TimeZone::parse(&f.time_zone) {
        Ok(tz) => tz.name().to_owned(),
        Err(e) => {
            errors.add("time_zone", admin_input::capitalise(&e.to_string()));
            String::new()
        }
    };
    let groups = f.groups();
    if db::audit::count_existing(&state.db, "groups", &groups).await? != groups.len() {
        errors.add(
            "groups",
            "Some of the ticked groups no longer exist. Check the list again.",
        );
    }
    Ok(Checked {
        display_name,
        email,
        role,
        time_zone,
        groups,
    })
}

impl Checked {
    fn fields(&self) -> AccountFields<'_> {
        AccountFields {
            display_name: &self.display_name,
            email: self.email.as_deref(),
            role: self.role,
            time_zone: &self.time_zone,
            groups: &self.groups,
        }
    }
}

/// The new user's form checked, its username and initial password too.
async fn check_new(
    state: &AppState,
    f: &UserForm,
) -> AppResult<Result<(Username, NewPassword, Checked), FieldErrors>> {
    let mut errors = FieldErrors::default();
    let username = Username::parse(&f.username);
    if let Err(e) = &username {
        errors.add("username", admin_input::capitalise(&e.to_string()));
    }
    let checked = check(state, f, &mut errors, f.username.trim()).await?;
    let secret = NewPassword::parse(&f.password, f.username.trim());
    if let Err(e) = &secret {
        errors.add("password", admin_input::capitalise(&e.to_string()));
    }
    Ok(match (username, secret, errors.is_empty()) {
        (Ok(username), Ok(secret), true) => Ok((username, secret, checked)),
        _ => Err(errors),
    })
}

pub async fn create(
    State(state): State<AppState>,
    chrome: Chrome,
    admin: CurrentUser,
    session: Session,
    Form(f): Form<UserForm>,
) -> AppResult<Response> {
    if f.go == "search" {
        return Ok(page(&state, chrome, None, &f, FieldErrors::default())
            .await?
            .into_response());
    }
    let (username, secret, checked) = match check_new(&state, &f).await? {
        Ok(checked) => checked,
        Err(errors) => return Ok(invalid(page(&state, chrome, None, &f, errors).await?)),
    };
    let admin = Actor::from(&admin);
    match users::create(&state, &admin, &username, &checked.fields(), &secret).await? {
        Creation::Created(_) => {
            done(&session, format!("Created {username}."), "/admin/users").await
        }
        Creation::Taken => {
            let mut errors = FieldErrors::default();
            errors.add(
                "username",
                format!("A user named \"{username}\" already exists (usernames are compared without regard to case)."),
            );
            Ok(invalid(page(&state, chrome, None, &f, errors).await?))
        }
    }
}

pub async fn update(
    State(state): State<AppState>,
    chrome: Chrome,
    admin: CurrentUser,
    session: Session,
    PathId(id): PathId,
    Form(f): Form<UserForm>,
) -> AppResult<Response> {
    let Some((account, _)) = account(&state, &admin, id).await? else {
        return gone(&session, "user", "/admin/users").await;
    };
    if f.go == "search" {
        return Ok(
            page(&state, chrome, Some(account), &f, FieldErrors::default())
                .await?
                .into_response(),
        );
    }
    let mut errors = FieldErrors::default();
    let checked = check(&state, &f, &mut errors, &account.username).await?;
    if !users::may_set_role(&(&admin).into(), id, checked.role) {
        errors.add(
            "role",
            "You cannot remove your own administrator role: ask another administrator.",
        );
    }
    if !errors.is_empty() {
        return Ok(invalid(
            page(&state, chrome, Some(account), &f, errors).await?,
        ));
    }
    save(&state, chrome, &admin, &session, &account, &f, &checked).await
}

/// Saves an account's checked form (see [`users::update`]), first asking to end the
/// sessions the change would no longer grant.
async fn save(
    state: &AppState,
    chrome: Chrome,
    admin: &CurrentUser,
    session: &Session,
    account: &Account,
    f: &UserForm,
    checked: &Checked,
) -> AppResult<Response> {
    let (id, name) = (account.id, &account.username);
    let mut tx = state.db.begin().await?;
    let Some(before) = users::update(&mut tx, &admin.into(), id, &checked.fields()).await? else {
        return gone(session, "user", "/admin/users").await;
    };
    let echo = f.echo();
    let ask = Ask {
        section: "users",
        change: "Save",
        subject: format!("the account {name}"),
        action: format!("/admin/users/{id}"),
        back: format!("/admin/users/{id}"),
        fields: &echo,
    };
    let ended = match end_or_ask(&mut tx, chrome, admin, &before, ask).await? {
        Ok(n) => n,
        Err(page) => {
            tx.rollback().await?;
            return Ok(page);
        }
    };
    tx.commit().await?;
    let response = done(session, format!("Saved {name}."), "/admin/users").await?;
    flash_ended(session, ended).await?;
    Ok(response)
}

async fn set_disabled(
    state: &AppState,
    admin: &CurrentUser,
    session: &Session,
    id: Uuid,
    disabled: bool,
) -> AppResult<Response> {
    match users::set_disabled(state, &admin.into(), id, disabled).await? {
        Disabling::OwnAccount => {
            let back = format!("/admin/users/{id}");
            refused(session, "You cannot disable your own account.", &back).await
        }
        Disabling::Gone => gone(session, "user", "/admin/users").await,
        Disabling::Done(name) => {
            let verb = if disabled { "Disabled" } else { "Enabled" };
            done(session, format!("{verb} {name}."), "/admin/users").await
        }
    }
}

pub async fn disable(
    State(state): State<AppState>,
    admin: CurrentUser,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    set_disabled(&state, &admin, &session, id, true).await
}

pub async fn enable(
    State(state): State<AppState>,
    admin: CurrentUser,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    set_disabled(&state, &admin, &session, id, false).await
}

pub async fn reset_password(
    State(state): State<AppState>,
    chrome: Chrome,
    admin: CurrentUser,
    session: Session,
    PathId(id): PathId,
    Form(f): Form<PasswordForm>,
) -> AppResult<Response> {
    let Some((account, fields)) = account(&state, &admin, id).await? else {
        return gone(&session, "user", "/admin/users").await;
    };
    let secret = match NewPassword::parse(&f.password, &account.username) {
        Ok(s) => s,
        Err(e) => {
            let mut errors = FieldErrors::default();
            errors.add("password", admin_input::capitalise(&e.to_string()));
            return Ok(invalid(
                page(&state, chrome, Some(account), &fields, errors).await?,
            ));
        }
    };
    match users::reset_password(&state, &(&admin).into(), id, &secret).await? {
        Some(name) => {
            done(
                &session,
                format!("Set a new password for {name}."),
                "/admin/users",
            )
            .await
        }
        None => gone(&session, "user", "/admin/users").await,
    }
}
