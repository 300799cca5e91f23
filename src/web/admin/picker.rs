//! Checkbox lists with a server-side search, for members and items (policies, tiers, groups).
//! Ticked entries are always listed (so they are posted again); the search narrows the rest.

use crate::db::audit::Choice;
use crate::web::form::Fields;
use uuid::Uuid;

/// How many unticked entries a list shows at most.
pub const SHOWN: i64 = 100;

/// One checkbox list, ready for the `picker` macro of `admin/macros.html`.
#[derive(Debug, Clone)]
pub struct Picker {
    /// The field name of the checkboxes; the search field is `<name>_q`.
    pub name: String,
    pub legend: String,
    pub search: String,
    pub items: Vec<(Choice, bool)>,
    /// Matching entries not shown.
    pub more: i64,
    pub error: Option<String>,
}

impl Picker {
    /// A list of `choices` (from a `choices` query) with `ticked` ticked.
    pub fn new(
        name: &str,
        legend: &str,
        search: &str,
        (choices, total): (Vec<Choice>, i64),
        ticked: &[Uuid],
    ) -> Self {
        let more = (total - i64::try_from(choices.len()).unwrap_or(0)).max(0);
        Self {
            name: name.to_owned(),
            legend: legend.to_owned(),
            search: search.to_owned(),
            items: choices
                .into_iter()
                .map(|c| {
                    let on = ticked.contains(&c.id);
                    (c, on)
                })
                .collect(),
            more,
            error: None,
        }
    }

    pub fn with_error(mut self, error: Option<&str>) -> Self {
        self.error = error.map(str::to_owned);
        self
    }

    /// How many entries are ticked (among those shown: ticked ones are always shown).
    pub fn ticked(&self) -> usize {
        self.items.iter().filter(|(_, on)| *on).count()
    }

    /// Whether the list holds anything of the form's: a tick, a search or an error. A long
    /// form folds the lists that do not (issue 16).
    pub fn in_use(&self) -> bool {
        self.ticked() > 0 || !self.search.is_empty() || self.error.is_some()
    }
}

/// The search text of the list `name` in a posted form.
pub fn search(fields: &Fields, name: &str) -> String {
    bounded(fields.text(&format!("{name}_q")))
}

/// A list's search text as typed (`{name}_q`), trimmed and bounded.
pub fn bounded(typed: &str) -> String {
    typed.trim().chars().take(100).collect()
}
