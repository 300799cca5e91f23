//! The account page: the user's second factor (switch on, new recovery codes, switch off
//! when the policy allows) and their SSH keys (`web::account_keys`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::auth::second_factor;
use crate::auth::session::{self, FlashKind};
use crate::db;
use crate::domain::ssh_keys::MAX_KEYS;
use crate::error::AppResult;
use crate::web::account_keys::{KeyView, views};
use crate::web::chrome::Chrome;
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
    on: bool,
    required: bool,
    remaining: i64,
    keys: Vec<KeyView>,
    max_keys: i64,
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

/// The account page.
pub async fn show(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
) -> AppResult<AccountPage> {
    page(&state, chrome, &user, None).await
}

async fn page(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
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
    Ok(AccountPage {
        chrome: chrome.at("account"),
        username: user.username.clone(),
        on,
        required: required(state, user),
        remaining,
        keys: views(state, user).await?,
        max_keys: MAX_KEYS,
        sso,
    })
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
        return Err(crate::error::AppError::NotFound);
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
            Ok(page(&state, chrome.at("account"), &user, Some(url))
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
