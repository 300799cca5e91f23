//! Ticket validation: a connection profile may name an endpoint of the ticket system that the
//! wizard's Notes page asks whether the ticket number exists and is open. The answer is shown
//! to the requester and stored with the request for approvers; the profile says whether a
//! ticket that is not open (or a validator that fails or is slow) blocks the request or only
//! warns.
//!
//! The exchange: `POST <url>` with `{"ticket": "...", "requester": "<username>",
//! "activity": "<activity name>"}`; the answer is 2xx with `{"exists": bool, "open": bool}`
//! and optionally `"summary": "<title of the ticket>"`.

use serde::{Deserialize, Serialize};

pub use crate::domain::ticket_check::{OnFailure, Outcome, TicketCheck, Validator};

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
