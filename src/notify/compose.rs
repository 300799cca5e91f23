//! The words of each email: pure functions from what happened to a subject and a plain-text
//! body, in the recipient's time zone and with the labels the pages use.

use std::fmt::Write as _;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::status::SessionStatus;
use crate::domain::tz::TimeZone;
use crate::domain::wizard::format_local;

use super::Kind;

/// How many resource names a subject lists before "and N more".
const SUBJECT_RESOURCES: usize = 3;

/// The request the email is about.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// For the link to the request page.
    pub id: Uuid,
    pub activity_name: String,
    pub requester_name: String,
    pub notes: String,
    pub ticket_number: String,
    pub tier_count: i16,
}

/// One session the email is about, with the event that caused it.
#[derive(Debug, Clone)]
pub struct SessionFacts {
    pub id: Uuid,
    pub resource_name: String,
    pub status: SessionStatus,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// Who made the change (approver), when a person did.
    pub actor_name: Option<String>,
    /// The denial's reason, or the approver's comment.
    pub comment: String,
    /// Ending soon: whether Extend is still possible.
    pub can_extend: bool,
}

/// Who reads it, and how times are shown to them.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub name: &'a str,
    pub zone: TimeZone,
    /// The zone's name as the user chose it.
    pub zone_name: &'a str,
}

/// One email's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub body: String,
}

/// Writes the email of `kind` about `sessions` (at least one) of `request`.
pub fn compose(
    kind: Kind,
    tier: Option<i16>,
    request: &RequestFacts,
    sessions: &[SessionFacts],
    reader: Reader<'_>,
    public_url: Option<&str>,
) -> Email {
    let on = resources_phrase(sessions);
    let activity = &request.activity_name;
    let subject = match kind {
        Kind::ApprovalNeeded => format!(
            "Approval needed: {activity} on {on} for {}",
            request.requester_name
        ),
        Kind::Approved => format!("Approved: {activity} on {on}"),
        Kind::Denied => format!("Approval Denied: {activity} on {on}"),
        Kind::Expired => format!("Expired: {activity} on {on}"),
        Kind::EndingSoon => format!("Ends in 10 minutes: {activity} on {on}"),
    };

    let mut body = format!("Hello {},\n\n", reader.name);
    let plural = sessions.len() > 1;
    let sessions_word = if plural {
        "activity sessions"
    } else {
        "activity session"
    };
    match kind {
        Kind::ApprovalNeeded => {
            let tier = tier.unwrap_or(1);
            let _ = writeln!(
                body,
                "{} requested {} your decision. Status: Waiting for Approval (tier {tier} of {}).",
                request.requester_name,
                if plural {
                    "activity sessions that need"
                } else {
                    "an activity session that needs"
                },
                request.tier_count.max(tier),
            );
        }
        Kind::Approved => {
            let _ = writeln!(
                body,
                "Your request for {} was approved{}.",
                sessions_word,
                by(sessions)
            );
        }
        Kind::Denied => {
            let _ = writeln!(
                body,
                "Your request for {} was denied{}. Status: Approval Denied.",
                sessions_word,
                by(sessions)
            );
        }
        Kind::Expired => {
            let _ = writeln!(
                body,
                "Your request for {sessions_word} received no decision in time. Status: Expired. \
                 To still do this work, request it again with Create Session."
            );
        }
        Kind::EndingSoon => {
            let _ = writeln!(
                body,
                "Your {sessions_word} will end in about 10 minutes. Save your work before it ends."
            );
        }
    }
    if matches!(kind, Kind::Approved | Kind::Denied) {
        let label = if kind == Kind::Denied {
            "Reason"
        } else {
            "Comment"
        };
        for comment in distinct(sessions.iter().map(|s| s.comment.trim())) {
            if !comment.is_empty() {
                let _ = writeln!(body, "{label}: {comment}");
            }
        }
    }
    if kind == Kind::EndingSoon && sessions.iter().any(|s| s.can_extend) {
        let _ = writeln!(
            body,
            "Need more time? Use Extend on the session's page before it ends."
        );
    }

    body.push('\n');
    let _ = writeln!(body, "Activity: {activity}");
    let _ = writeln!(body, "Requested By: {}", request.requester_name);
    write_sessions(&mut body, kind, sessions, reader);
    if !request.notes.trim().is_empty() {
        let _ = writeln!(body, "Notes: {}", request.notes.trim());
    }
    if !request.ticket_number.trim().is_empty() {
        let _ = writeln!(body, "Ticket Number: {}", request.ticket_number.trim());
    }

    if let Some(url) = public_url {
        body.push('\n');
        if kind == Kind::ApprovalNeeded {
            let _ = writeln!(
                body,
                "Approve or Deny on the request's page: {url}/requests/{}",
                request.id
            );
        } else {
            let _ = writeln!(body, "Request: {url}/requests/{}", request.id);
            for s in sessions {
                let _ = writeln!(
                    body,
                    "{}: {url}/sessions/{}",
                    if plural {
                        s.resource_name.as_str()
                    } else {
                        "Details"
                    },
                    s.id
                );
            }
        }
    }
    body.push_str("\n-- \nPortcullis\n");
    Email {
        subject: one_line(&subject),
        body,
    }
}

/// "lnx-web-01", "lnx-web-01, lnx-web-02", "a, b, c and 2 more".
fn resources_phrase(sessions: &[SessionFacts]) -> String {
    let names: Vec<&str> = sessions.iter().map(|s| s.resource_name.as_str()).collect();
    if names.len() <= SUBJECT_RESOURCES {
        names.join(", ")
    } else {
        format!(
            "{} and {} more",
            names[..SUBJECT_RESOURCES].join(", "),
            names.len() - SUBJECT_RESOURCES
        )
    }
}

/// " by Bob Brennan" (or " by Bob Brennan and Dave Dumont"), when people decided.
fn by(sessions: &[SessionFacts]) -> String {
    let names = distinct(sessions.iter().filter_map(|s| s.actor_name.as_deref()));
    if names.is_empty() {
        String::new()
    } else {
        format!(" by {}", names.join(" and "))
    }
}

fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// Resource, Status (where it says something the opening line does not), Start and End: once
/// when every session shares them, else one line per resource.
fn write_sessions(body: &mut String, kind: Kind, sessions: &[SessionFacts], reader: Reader<'_>) {
    let when = |t: OffsetDateTime| {
        format!(
            "{} ({})",
            format_local(reader.zone.local(t)),
            reader.zone_name
        )
    };
    let show_status = kind == Kind::Approved;
    let same_window = sessions
        .iter()
        .all(|s| s.start == sessions[0].start && s.end == sessions[0].end);
    let same_status = sessions.iter().all(|s| s.status == sessions[0].status);
    if let [only] = sessions {
        let _ = writeln!(body, "Resource: {}", only.resource_name);
    } else {
        let _ = writeln!(body, "Resources:");
        for s in sessions {
            let mut line = format!("  {}", s.resource_name);
            if show_status && !same_status {
                let _ = write!(line, " (Status: {})", s.status.label());
            }
            if !same_window {
                let _ = write!(line, ", Start: {}, End: {}", when(s.start), when(s.end));
            }
            let _ = writeln!(body, "{line}");
        }
    }
    if show_status && same_status {
        let _ = writeln!(body, "Status: {}", sessions[0].status.label());
    }
    if same_window {
        let _ = writeln!(body, "Start: {}", when(sessions[0].start));
        let _ = writeln!(body, "End: {}", when(sessions[0].end));
    }
}

/// Names typed by people end up in the subject: keep it to one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn request() -> RequestFacts {
        RequestFacts {
            id: Uuid::nil(),
            activity_name: "Linux administration".into(),
            requester_name: "Alice Archer".into(),
            notes: "Patch the kernel".into(),
            ticket_number: String::new(),
            tier_count: 1,
        }
    }

    fn session(name: &str) -> SessionFacts {
        SessionFacts {
            id: Uuid::nil(),
            resource_name: name.into(),
            status: SessionStatus::WaitingForApproval,
            start: datetime!(2026-11-28 09:00 UTC),
            end: datetime!(2026-11-28 11:00 UTC),
            actor_name: None,
            comment: String::new(),
            can_extend: false,
        }
    }

    fn berlin(name: &str) -> Reader<'_> {
        Reader {
            name,
            zone: TimeZone::parse("Europe/Berlin").unwrap(),
            zone_name: "Europe/Berlin",
        }
    }

    #[test]
    fn an_approval_request_names_activity_resource_requester_and_local_window() {
        let email = compose(
            Kind::ApprovalNeeded,
            Some(1),
            &request(),
            &[session("lnx-web-01")],
            berlin("Bob Brennan"),
            Some("https://pc.example"),
        );
        assert_eq!(
            email.subject,
            "Approval needed: Linux administration on lnx-web-01 for Alice Archer"
        );
        for line in [
            "Hello Bob Brennan,",
            "Status: Waiting for Approval (tier 1 of 1).",
            "Resource: lnx-web-01",
            "Start: 2026-11-28 10:00 (Europe/Berlin)",
            "End: 2026-11-28 12:00 (Europe/Berlin)",
            "Notes: Patch the kernel",
            "Approve or Deny on the request's page: https://pc.example/requests/00000000-0000-0000-0000-000000000000",
        ] {
            assert!(
                email.body.contains(line),
                "{line} missing from:\n{}",
                email.body
            );
        }
        assert!(
            !email.body.contains("Ticket Number"),
            "empty fields are left out"
        );
    }

    #[test]
    fn many_resources_are_shortened_in_the_subject_and_listed_in_the_body() {
        let sessions: Vec<SessionFacts> =
            (1..=5).map(|i| session(&format!("lnx-web-0{i}"))).collect();
        let email = compose(
            Kind::Expired,
            None,
            &request(),
            &sessions,
            berlin("Alice Archer"),
            None,
        );
        assert_eq!(
            email.subject,
            "Expired: Linux administration on lnx-web-01, lnx-web-02, lnx-web-03 and 2 more"
        );
        assert!(
            email
                .body
                .contains("Resources:\n  lnx-web-01\n  lnx-web-02\n")
        );
        assert!(email.body.contains("Status: Expired."));
        assert!(!email.body.contains("http"), "no public URL: no links");
    }

    #[test]
    fn a_denial_carries_the_approver_and_the_reason() {
        let mut s = session("lnx-web-01");
        s.status = SessionStatus::ApprovalDenied;
        s.actor_name = Some("Bob Brennan".into());
        s.comment = "Not during the freeze.".into();
        let email = compose(
            Kind::Denied,
            None,
            &request(),
            &[s],
            berlin("Alice Archer"),
            Some("https://pc.example"),
        );
        assert_eq!(
            email.subject,
            "Approval Denied: Linux administration on lnx-web-01"
        );
        assert!(email.body.contains(
            "was denied by Bob Brennan. Status: Approval Denied.\nReason: Not during the freeze."
        ));
        assert!(email.body.contains(&format!(
            "Details: https://pc.example/sessions/{}",
            Uuid::nil()
        )));
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let mut r = request();
        r.activity_name = "Evil\r\nBcc: someone@example.com".into();
        let email = compose(Kind::Approved, None, &r, &[session("x")], berlin("A"), None);
        assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
    }
}
