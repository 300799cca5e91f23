//! Ticket validation: a connection profile may name an endpoint of the ticket system that the
//! wizard's Notes page asks whether the ticket number exists and is open. The answer is shown
//! to the requester and stored with the request for approvers; the profile says whether a
//! ticket that is not open (or a validator that fails or is slow) blocks the request or only
//! warns.
//!
//! The exchange: `POST <url>` with `{"ticket": "...", "requester": "<username>",
//! "activity": "<activity name>"}`; the answer is 2xx with `{"exists": bool, "open": bool}`
//! and optionally `"summary": "<title of the ticket>"`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the profile does when the ticket is not confirmed open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// The requester cannot go on.
    Block,
    /// The requester goes on; the warning is stored with the request.
    Warn,
}

impl OnFailure {
    pub const ALL: [OnFailure; 2] = [OnFailure::Block, OnFailure::Warn];

    pub fn key(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Warn => "warn",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Block => "Block: the request cannot go on",
            Self::Warn => "Warn: the request goes on with the warning recorded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.key() == text.trim())
    }
}

/// The validator's verdict on a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It exists and is open.
    Open,
    /// It exists but is closed (or otherwise not open).
    Closed,
    /// The ticket system does not know it.
    Unknown,
    /// No usable answer: timeout, error, or an answer not understood.
    Failed,
}

impl Outcome {
    pub fn key(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Unknown => "unknown",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Open, Self::Closed, Self::Unknown, Self::Failed]
            .into_iter()
            .find(|o| o.key() == text)
    }
}

/// A ticket as checked: kept in the wizard draft, then stored with the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketCheck {
    /// The ticket number that was checked (a changed number needs a new check).
    pub ticket: String,
    pub outcome: Outcome,
    /// What the requester and approvers read.
    pub message: String,
}

impl TicketCheck {
    pub fn is_open(&self) -> bool {
        self.outcome == Outcome::Open
    }
}

/// The validator of a profile.
#[derive(Debug, Clone)]
pub struct Validator {
    pub url: String,
    pub timeout: Duration,
    pub on_failure: OnFailure,
}

#[derive(Serialize)]
struct Question<'a> {
    ticket: &'a str,
    requester: &'a str,
    activity: &'a str,
}

#[derive(Deserialize)]
struct Answer {
    exists: bool,
    open: bool,
    #[serde(default)]
    summary: Option<String>,
}

/// Asks the validator about `ticket`, within its timeout. Never fails: a validator that does
/// not answer usefully gives [`Outcome::Failed`] with the reason.
pub async fn check(v: &Validator, ticket: &str, requester: &str, activity: &str) -> TicketCheck {
    let (outcome, message) = ask(v, ticket, requester, activity).await;
    TicketCheck {
        ticket: ticket.to_owned(),
        outcome,
        message,
    }
}

async fn ask(v: &Validator, ticket: &str, requester: &str, activity: &str) -> (Outcome, String) {
    let secs = v.timeout.as_secs_f64();
    let failed = |why: String| {
        (
            Outcome::Failed,
            format!("The ticket system could not confirm ticket {ticket}: {why}"),
        )
    };
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(v.timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => return failed(format!("{e}.")),
    };
    let question = Question {
        ticket,
        requester,
        activity,
    };
    let body = serde_json::to_vec(&question).unwrap_or_default();
    let response = client
        .post(&v.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return failed(format!("it did not answer within {secs} s.")),
        Err(_) => return failed("it could not be reached.".into()),
    };
    if !response.status().is_success() {
        return failed(format!("it answered {}.", response.status()));
    }
    let body = match tokio::time::timeout(v.timeout, response.bytes()).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) if e.is_timeout() => {
            return failed(format!("it did not answer within {secs} s."));
        }
        Err(_) => return failed(format!("it did not answer within {secs} s.")),
        Ok(Err(_)) => return failed("its answer was cut off.".into()),
    };
    let Ok(answer) = serde_json::from_slice::<Answer>(&body) else {
        return failed("its answer was not understood.".into());
    };
    let summary = answer
        .summary
        .map(|s| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!(" ({})", s.trim()))
        .unwrap_or_default();
    match (answer.exists, answer.open) {
        (true, true) => (
            Outcome::Open,
            format!("The ticket system confirms that ticket {ticket}{summary} is open."),
        ),
        (true, false) => (
            Outcome::Closed,
            format!("The ticket system says that ticket {ticket}{summary} is not open."),
        ),
        (false, _) => (
            Outcome::Unknown,
            format!("The ticket system does not know ticket {ticket}."),
        ),
    }
}
