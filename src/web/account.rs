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

use crate::auth::password;
use crate::auth::second_factor;
use crate::auth::session::{self, FlashKind};
use crate::db;
use crate::domain::admin_input::{self, FieldErrors};
use crate::domain::names::{DisplayName, NewPassword};
use crate::domain::ssh_keys::MAX_KEYS;
use crate::domain::tz::TimeZone;
use crate::state::AppState;
use crate::web::account_keys::{KeyView, views};
use crate::web::chrome::Chrome;
use crate::web::error::{AppError, AppResult};
use crate::web::guard::CurrentUser;
use crate::web::second_factor::{
    CodeForm, RecoveryCodesPage, WRONG_CODE, WRONG_ENROL_CODE, check_code, confirm_enrolment,
    enrol_page, new_recovery_codes,
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

/// Changes the user's own password: the current one must be right (a wrong one counts
/// towards the lockout, as at sign-in), the new one passes the same rules as an
/// administrator's reset. Every other sign-in of the account ends; this one stays.
pub async fn change_password(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    let mut errors = FieldErrors::default();
    let Some(old_hash) = db::users::password_hash_of(&state.db, user.id).await? else {
        errors.add(
            "current_password",
            "Your account has no password: you sign in through single sign-on.",
        );
        return refused(&state, chrome, &user, None, errors).await;
    };
    let right = form.current_password.len() <= 1024
        && password::verify(form.current_password, Some(old_hash.clone())).await?;
    if !right {
        db::users::record_failed_login(&state.db, user.id).await?;
        errors.add(
            "current_password",
            "Your current password is not right. Nothing was changed.",
        );
        return refused(&state, chrome, &user, None, errors).await;
    }
    let secret = match NewPassword::parse(&form.new_password, &user.username) {
        Ok(secret) => secret,
        Err(e) => {
            errors.add("new_password", admin_input::capitalise(&e.to_string()));
            return refused(&state, chrome, &user, None, errors).await;
        }
    };
    if form.new_password_again != form.new_password {
        errors.add(
            "new_password_again",
            "The two new passwords differ: type the same one twice.",
        );
        return refused(&state, chrome, &user, None, errors).await;
    }
    let new_hash = password::hash(secret.expose().to_owned()).await?;
    let keep = session.id().map(|id| crate::auth::store::stored_id(&id));
    let mut tx = state.db.begin().await?;
    let ended = db::users::change_own_password(
        &mut tx,
        user.id,
        &user.username,
        &old_hash,
        &new_hash,
        keep.as_deref(),
    )
    .await?;
    let Some(ended) = ended else {
        tx.rollback().await?;
        errors.add(
            "current_password",
            "Your password was changed elsewhere meanwhile. Nothing was changed: sign in again if you must.",
        );
        return refused(&state, chrome, &user, None, errors).await;
    };
    tx.commit().await?;
    tracing::info!(user = %user.id, ended, "password changed by its owner");
    let others = match ended {
        0 => "You had no other sign-ins.".to_owned(),
        1 => "Your other sign-in has ended.".to_owned(),
        n => format!("Your {n} other sign-ins have ended."),
    };
    session::flash(
        &session,
        FlashKind::Success,
        format!("Your password is changed. {others}"),
    )
    .await?;
    Ok(Redirect::to("/account").into_response())
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    time_zone: String,
}

/// Sets the user's own display name and time zone.
pub async fn update_profile(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
    Form(form): Form<ProfileForm>,
) -> AppResult<Response> {
    let mut errors = FieldErrors::default();
    let display_name = DisplayName::parse(&form.display_name);
    if let Err(e) = &display_name {
        errors.add("display_name", admin_input::capitalise(&e.to_string()));
    }
    let time_zone = TimeZone::parse(&form.time_zone);
    if let Err(e) = &time_zone {
        errors.add("time_zone", admin_input::capitalise(&e.to_string()));
    }
    let (Ok(display_name), Ok(time_zone)) = (display_name, time_zone) else {
        let typed = (
            form.display_name.chars().take(200).collect(),
            form.time_zone.chars().take(100).collect(),
        );
        return refused(&state, chrome, &user, Some(typed), errors).await;
    };
    let mut tx = state.db.begin().await?;
    if !db::users::update_own_profile(
        &mut tx,
        user.id,
        &user.username,
        &display_name,
        time_zone.name(),
    )
    .await?
    {
        return Err(AppError::NotFound);
    }
    tx.commit().await?;
    session::flash(
        &session,
        FlashKind::Success,
        format!(
            "Saved: you are {} and see times in {}.",
            display_name.as_str(),
            time_zone.name()
        ),
    )
    .await?;
    Ok(Redirect::to("/account").into_response())
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

/// Link my provider sign-in: the account's password confirmed (a wrong one counts towards
/// the lockout, as at sign-in), then the page again with the way to the provider, where the
/// person signs in as themselves; the way back links that sign-in to this account. Never
/// by a name or an email the provider sends: only who signed in there, on the way back to
/// this browser's signed-in session.
pub async fn link_sso(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
    Form(form): Form<LinkForm>,
) -> AppResult<Response> {
    let Some(provider) = state.settings.sso.clone() else {
        return Err(crate::web::error::AppError::NotFound);
    };
    if db::identities::is_linked(&state.db, user.id, provider.sso.issuer.as_str()).await? {
        session::flash(
            &session,
            FlashKind::Info,
            format!("Your account is already linked to {}.", provider.sso.name),
        )
        .await?;
        return Ok(Redirect::to("/account").into_response());
    }
    let row = db::users::find_for_login(&state.db, &user.username).await?;
    let hash = row.as_ref().and_then(|r| r.password_hash.clone());
    let locked = row.as_ref().is_some_and(|r| r.locked);
    let right =
        !locked && hash.is_some() && crate::auth::password::verify(form.password, hash).await?;
    if !right {
        if !locked {
            db::users::record_failed_login(&state.db, user.id).await?;
        }
        session::flash(
            &session,
            FlashKind::Error,
            "That is not your password (or the account is locked for a while after too many tries). Nothing was linked.",
        )
        .await?;
        return Ok(Redirect::to("/account").into_response());
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match provider.begin("/account".to_owned(), now).await {
        Ok((url, mut pending)) => {
            pending.link = Some(user.id);
            session::begin_sso(&session, pending).await?;
            Ok(page(
                &state,
                chrome.at("account"),
                &user,
                None,
                FieldErrors::default(),
                Some(url),
            )
            .await?
            .into_response())
        }
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on link could not start");
            session::flash(
                &session,
                FlashKind::Error,
                format!(
                    "{} could not be reached. Nothing was linked: try again later.",
                    provider.sso.name
                ),
            )
            .await?;
            Ok(Redirect::to("/account").into_response())
        }
    }
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

/// A code proving the user holds the factor: right, or the account page with the reason.
/// A wrong code counts towards the lockout as at sign-in.
async fn confirmed_by_code(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    code: &str,
) -> AppResult<bool> {
    if check_code(state, user.id, code).await? {
        return Ok(true);
    }
    db::users::record_failed_login(&state.db, user.id).await?;
    session::flash(
        session,
        FlashKind::Error,
        format!("Nothing was changed. {WRONG_CODE}"),
    )
    .await?;
    Ok(false)
}

/// New recovery codes, replacing the old ones (confirmed with a code).
pub async fn regenerate(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    if !db::second_factor::is_on(&state.db, user.id).await? {
        return Ok(Redirect::to("/account").into_response());
    }
    if !confirmed_by_code(&state, &session, &user, &form.code).await? {
        return Ok(Redirect::to("/account").into_response());
    }
    let mut tx = state.db.begin().await?;
    let codes = new_recovery_codes(&mut tx, user.id).await?;
    tx.commit().await?;
    tracing::info!(user = %user.id, "new recovery codes");
    Ok(RecoveryCodesPage {
        chrome: chrome.at("account"),
        codes,
        continue_to: "/account".into(),
    }
    .into_response())
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
        session::flash(
            &session,
            FlashKind::Error,
            "Your account must have a second factor: it cannot be switched off.",
        )
        .await?;
        return Ok(Redirect::to("/account").into_response());
    }
    if !db::second_factor::is_on(&state.db, user.id).await? {
        return Ok(Redirect::to("/account").into_response());
    }
    if !confirmed_by_code(&state, &session, &user, &form.code).await? {
        return Ok(Redirect::to("/account").into_response());
    }
    let mut conn = state.db.acquire().await?;
    db::second_factor::remove(&mut conn, user.id).await?;
    tracing::info!(user = %user.id, "second factor switched off");
    session::flash(
        &session,
        FlashKind::Success,
        "Your second factor is off: you sign in with your password alone.",
    )
    .await?;
    Ok(Redirect::to("/account").into_response())
}
