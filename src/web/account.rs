//! The account page: the user's password, display name and time zone, their second factor
//! (switch on, new recovery codes to copy or download, switch off when the policy allows)
//! and their SSH keys (`web::account_keys`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::app;
use crate::app::Actor;
use crate::app::account::{self, LinkStart, PasswordChange, PasswordRefused};
use crate::app::second_factor::{Unchanged, confirm_enrolment};
use crate::auth::second_factor;
use crate::auth::session::{self, FlashKind};
use crate::db;
use crate::domain::admin_input::{self, FieldErrors};
use crate::domain::names::DisplayName;
use crate::domain::ssh_keys::MAX_KEYS;
use crate::domain::tz::TimeZone;
use crate::state::AppState;
use crate::web::account_keys::{KeyView, views};
use crate::web::chrome::Chrome;
use crate::web::error::{AppError, AppResult};
use crate::web::guard::CurrentUser;
use crate::web::second_factor::{
    CodeForm, RecoveryCodesPage, WRONG_CODE, WRONG_ENROL_CODE, enrol_page,
};

const ENROL: &str = "/account/second-factor";

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
pub struct AccountPage {
    chrome: Chrome,
    username: String,
    /// The display name as stored: the page's heading.
    name: String,
    on: bool,
    required: bool,
    remaining: i64,
    keys: Vec<KeyView>,
    max_keys: i64,
    tokens: Vec<crate::web::account_tokens::TokenView>,
    scope_choices: Vec<(&'static str, &'static str)>,
    max_token_days: i64,
    /// The profile form: as stored, or as typed when it was refused.
    display_name: String,
    time_zone: String,
    zones: Vec<&'static str>,
    /// Whether the account has a password to change (not a single sign-on account).
    has_password: bool,
    errors: FieldErrors,
    /// Single sign-on is on: whether this account is linked to the provider.
    sso: Option<SsoLink>,
}

/// The Account page's single sign-on part.
pub struct SsoLink {
    provider: String,
    linked: bool,
    /// The provider's address to continue to, once the password is confirmed.
    continue_url: Option<String>,
}

fn required(state: &AppState, user: &CurrentUser) -> bool {
    second_factor::required(state.settings.second_factor, user.role, user.is_approver)
}

/// The account page, with the profile form's `typed` values and `errors` when a form was
/// refused.
async fn page(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    typed: Option<(String, String)>,
    errors: FieldErrors,
    continue_url: Option<String>,
) -> AppResult<AccountPage> {
    let sso = match state.settings.sso.as_deref() {
        None => None,
        Some(provider) => Some(SsoLink {
            provider: provider.sso.name.clone(),
            linked: db::identities::is_linked(&state.db, user.id, provider.sso.issuer.as_str())
                .await?,
            continue_url,
        }),
    };
    let on = db::second_factor::is_on(&state.db, user.id).await?;
    let remaining = if on {
        db::second_factor::remaining_recovery_codes(&state.db, user.id).await?
    } else {
        0
    };
    let (display_name, time_zone) =
        typed.unwrap_or_else(|| (user.display_name.clone(), user.time_zone.name().to_owned()));
    Ok(AccountPage {
        chrome: chrome.at("account"),
        username: user.username.clone(),
        name: user.display_name.clone(),
        on,
        required: required(state, user),
        remaining,
        keys: views(state, user).await?,
        max_keys: MAX_KEYS,
        tokens: crate::web::account_tokens::views(state, user).await?,
        scope_choices: crate::web::account_tokens::scope_choices(),
        max_token_days: crate::domain::api_token::MAX_DAYS,
        display_name,
        time_zone,
        zones: TimeZone::all_names(),
        has_password: db::users::password_hash_of(&state.db, user.id)
            .await?
            .is_some(),
        errors,
        sso,
    })
}

/// The account page.
pub async fn show(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
) -> AppResult<AccountPage> {
    page(&state, chrome, &user, None, FieldErrors::default(), None).await
}

/// The account page again with what was wrong, answered 422.
async fn refused(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    typed: Option<(String, String)>,
    errors: FieldErrors,
) -> AppResult<Response> {
    let page = page(state, chrome, user, typed, errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_again: String,
}

/// Changes the user's own password (see [`account::change_password`]); this sign-in stays.
pub async fn change_password(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    let keep = session.id().map(|id| crate::auth::store::stored_id(&id));
    let change = PasswordChange {
        current: form.current_password,
        new: form.new_password,
        again: form.new_password_again,
    };
    let actor = Actor::from(&user);
    let others_ended =
        match account::change_password(&state, &actor, keep.as_deref(), change).await? {
            Ok(others_ended) => others_ended,
            Err(refusal) => {
                let mut errors = FieldErrors::default();
                let (field, message) = password_refusal(refusal);
                errors.add(field, message);
                return refused(&state, chrome, &user, None, errors).await;
            }
        };
    let others = match others_ended {
        0 => "You had no other sign-ins.".to_owned(),
        1 => "Your other sign-in has ended.".to_owned(),
        n => format!("Your {n} other sign-ins have ended."),
    };
    let text = format!("Your password is changed. {others}");
    back(&session, FlashKind::Success, text).await
}

/// The field a refused password change is about, and what to tell.
fn password_refusal(refusal: PasswordRefused) -> (&'static str, String) {
    match refusal {
        PasswordRefused::NoPassword => (
            "current_password",
            "Your account has no password: you sign in through single sign-on.".into(),
        ),
        PasswordRefused::WrongCurrent => (
            "current_password",
            "Your current password is not right. Nothing was changed.".into(),
        ),
        PasswordRefused::Weak(e) => ("new_password", admin_input::capitalise(&e.to_string())),
        PasswordRefused::Differ => (
            "new_password_again",
            "The two new passwords differ: type the same one twice.".into(),
        ),
        PasswordRefused::ChangedMeanwhile => (
            "current_password",
            "Your password was changed elsewhere meanwhile. Nothing was changed: sign in again if you must.".into(),
        ),
    }
}

/// The message on the account page, and 303 to it.
async fn back(session: &Session, kind: FlashKind, text: impl Into<String>) -> AppResult<Response> {
    session::flash(session, kind, text).await?;
    Ok(Redirect::to("/account").into_response())
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    time_zone: String,
}

impl ProfileForm {
    /// The display name and time zone, or what is wrong with each.
    fn parse(&self) -> Result<(DisplayName, TimeZone), FieldErrors> {
        let mut errors = FieldErrors::default();
        let display_name = DisplayName::parse(&self.display_name);
        if let Err(e) = &display_name {
            errors.add("display_name", admin_input::capitalise(&e.to_string()));
        }
        let time_zone = TimeZone::parse(&self.time_zone);
        if let Err(e) = &time_zone {
            errors.add("time_zone", admin_input::capitalise(&e.to_string()));
        }
        match (display_name, time_zone) {
            (Ok(display_name), Ok(time_zone)) => Ok((display_name, time_zone)),
            _ => Err(errors),
        }
    }

    /// The form as typed, to show again (cut to a length the page can hold).
    fn typed(&self) -> (String, String) {
        (
            self.display_name.chars().take(200).collect(),
            self.time_zone.chars().take(100).collect(),
        )
    }
}

/// Sets the user's own display name and time zone.
pub async fn update_profile(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
    Form(form): Form<ProfileForm>,
) -> AppResult<Response> {
    let (display_name, time_zone) = match form.parse() {
        Ok(parsed) => parsed,
        Err(errors) => return refused(&state, chrome, &user, Some(form.typed()), errors).await,
    };
    let actor = Actor::from(&user);
    if !account::update_profile(&state, &actor, &display_name, time_zone).await? {
        return Err(AppError::NotFound);
    }
    let text = format!(
        "Saved: you are {} and see times in {}.",
        display_name.as_str(),
        time_zone.name()
    );
    back(&session, FlashKind::Success, text).await
}

#[derive(Debug, Deserialize)]
pub struct CodesForm {
    #[serde(default)]
    codes: String,
}

/// The recovery codes just shown, as a text file to keep: the page posts them back (they
/// are stored only as hashes, so the server cannot make the file later). Only well-formed
/// codes are accepted, at most as many as a set has.
pub async fn download_recovery_codes(
    user: CurrentUser,
    Form(form): Form<CodesForm>,
) -> AppResult<Response> {
    let codes: Vec<&str> = form.codes.split_whitespace().collect();
    let well_formed = |c: &str| {
        (16..=19).contains(&c.len())
            && c.bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    if codes.is_empty()
        || codes.len() > second_factor::RECOVERY_CODES
        || !codes.iter().all(|c| well_formed(c))
    {
        return Err(AppError::Validation(
            "These are not recovery codes: make new ones on your account page.".into(),
        ));
    }
    let mut text = format!(
        "Portcullis recovery codes for {}\r\nEach code signs you in once instead of a code from your authenticator app.\r\n\r\n",
        user.username
    );
    for code in codes {
        text.push_str(code);
        text.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"portcullis-recovery-codes.txt\"",
            ),
        ],
        text,
    )
        .into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    password: String,
}

/// Link my provider sign-in (see [`account::start_link`]): once the password is confirmed,
/// the page again with the way to the provider, where the person signs in as themselves; the
/// way back (`web::sso`) links that sign-in to this account.
pub async fn link_sso(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
    Form(form): Form<LinkForm>,
) -> AppResult<Response> {
    let Some(provider) = state.settings.sso.clone() else {
        return Err(AppError::NotFound);
    };
    let name = &provider.sso.name;
    let (kind, text) = match account::start_link(&state, &provider, &(&user).into(), form.password)
        .await?
    {
        LinkStart::Continue { url, pending } => {
            session::begin_sso(&session, pending).await?;
            let none = FieldErrors::default();
            let page = page(&state, chrome.at("account"), &user, None, none, Some(url)).await?;
            return Ok(page.into_response());
        }
        LinkStart::AlreadyLinked => (
            FlashKind::Info,
            format!("Your account is already linked to {name}."),
        ),
        LinkStart::WrongPassword => (
            FlashKind::Error,
            "That is not your password (or the account is locked for a while after too many tries). Nothing was linked.".to_owned(),
        ),
        LinkStart::Unreachable => (
            FlashKind::Error,
            format!("{name} could not be reached. Nothing was linked: try again later."),
        ),
    };
    back(&session, kind, text).await
}

/// Enrolment from the account page.
pub async fn show_enrol(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
) -> AppResult<Response> {
    if db::second_factor::is_on(&state.db, user.id).await? {
        session::flash(
            &session,
            FlashKind::Info,
            "Your second factor is already on.",
        )
        .await?;
        return Ok(Redirect::to("/account").into_response());
    }
    Ok(enrol_page(
        &state,
        chrome.at("account"),
        user.id,
        &user.username,
        ENROL,
        None,
    )
    .await?
    .into_response())
}

/// Switches the second factor on with a right code and shows the recovery codes once.
pub async fn submit_enrol(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    if let Some(codes) = confirm_enrolment(&state, user.id, &form.code).await? {
        return Ok(RecoveryCodesPage {
            chrome: chrome.at("account"),
            codes,
            continue_to: "/account".into(),
        }
        .into_response());
    }
    if db::second_factor::is_on(&state.db, user.id).await? {
        return show_enrol(State(state), chrome, session, user).await;
    }
    let page = enrol_page(
        &state,
        chrome.at("account"),
        user.id,
        &user.username,
        ENROL,
        Some(WRONG_ENROL_CODE),
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Back to the account page, saying why a change to the second factor was not made.
async fn not_changed(session: &Session, refused: Unchanged) -> AppResult<Response> {
    match refused {
        Unchanged::Off => Ok(Redirect::to("/account").into_response()),
        Unchanged::WrongCode => {
            let text = format!("Nothing was changed. {WRONG_CODE}");
            back(session, FlashKind::Error, text).await
        }
    }
}

/// New recovery codes, replacing the old ones (confirmed with a code).
pub async fn regenerate(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    match app::second_factor::regenerate(&state, user.id, &form.code).await? {
        Ok(codes) => Ok(RecoveryCodesPage {
            chrome: chrome.at("account"),
            codes,
            continue_to: "/account".into(),
        }
        .into_response()),
        Err(refused) => not_changed(&session, refused).await,
    }
}

/// Switches the second factor off, when the policy does not require one (confirmed with a
/// code).
pub async fn switch_off(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    if required(&state, &user) {
        let text = "Your account must have a second factor: it cannot be switched off.";
        return back(&session, FlashKind::Error, text).await;
    }
    match app::second_factor::switch_off(&state, user.id, &form.code).await? {
        Ok(()) => {
            let text = "Your second factor is off: you sign in with your password alone.";
            back(&session, FlashKind::Success, text).await
        }
        Err(refused) => not_changed(&session, refused).await,
    }
}
