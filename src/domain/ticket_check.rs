//! What a ticket check is and what a profile does with its verdict (the HTTP exchange with the
//! ticket system is `crate::ticket_validation`).

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
