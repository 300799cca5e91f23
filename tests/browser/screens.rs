//! Small screens and wide tables (issue 16): what a page looks like at a phone's width
//! (390×844) and a laptop's (1366×900). The page tour of `a11y` measures every page at both
//! sizes; the tests here read those measurements. (`docs/screenshots/take.py` saves PNGs of
//! the main pages at both sizes.)

use serde_json::json;

use crate::a11y::tour;
use crate::harness::Browser;

/// A phone.
pub const PHONE: (u32, u32) = (390, 844);
/// A small laptop.
pub const LAPTOP: (u32, u32) = (1366, 900);

/// The pages whose tables must fit whole at [`LAPTOP`] (tour labels).
pub const WIDE_TABLES: [&str; 3] = [
    "alice: Dashboard > Active",
    "bob: Approvals",
    "carol: Dashboard > All",
];

/// Makes the page's viewport `width`×`height` CSS pixels (until [`reset_viewport`]).
pub async fn set_viewport(browser: &Browser, (width, height): (u32, u32)) {
    browser
        .cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
}

/// Back to the window's own size.
pub async fn reset_viewport(browser: &Browser) {
    browser
        .cdp("Emulation.clearDeviceMetricsOverride", json!({}))
        .await;
}

/// What is wider than the viewport on the current page, one line per problem; empty when
/// nothing is: the document scrolling sideways (with the elements that stick out), and, when
/// `tables` is set, any table that scrolls sideways inside its frame, any date that wraps
/// onto a second line and any clipped note whose full text cannot be reached.
pub async fn too_wide(browser: &Browser, tables: bool) -> Vec<String> {
    let found = browser
        .client
        .execute(
            r"const tables = arguments[0];
              const problems = [];
              const doc = document.documentElement;
              const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                + (el.classList.length ? '.' + [...el.classList].join('.') : '');
              if (doc.scrollWidth > window.innerWidth) {
                const out = [...document.body.querySelectorAll('*')]
                  .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
                  .filter((el) => !el.parentElement
                    || el.parentElement.getBoundingClientRect().right <= window.innerWidth + 0.5)
                  .slice(0, 5)
                  .map((el) => name(el) + ' to ' + Math.round(el.getBoundingClientRect().right));
                problems.push('the page is ' + doc.scrollWidth + ' px wide in a '
                  + window.innerWidth + ' px window: ' + out.join(', '));
              }
              if (tables) {
                for (const wrap of document.querySelectorAll('.table-wrap')) {
                  if (wrap.scrollWidth > wrap.clientWidth + 1) {
                    problems.push('table ' + name(wrap.querySelector('table') || wrap) + ' is '
                      + wrap.scrollWidth + ' px wide in ' + wrap.clientWidth + ' px');
                  }
                }
                const dates = ['Requested', 'Start', 'End', 'Decide By', 'Planned End', 'Ended'];
                for (const table of document.querySelectorAll('table.grid')) {
                  const heads = [...table.querySelectorAll('thead th')]
                    .map((th) => th.textContent.trim());
                  for (const row of table.querySelectorAll('tbody tr')) {
                    [...row.children].forEach((cell, i) => {
                      if (!dates.includes(heads[i]) || cell.textContent.trim() === '') return;
                      // The lines of the cell's text (its element boxes aside).
                      const tops = new Set();
                      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
                      while (walker.nextNode()) {
                        const range = document.createRange();
                        range.selectNodeContents(walker.currentNode);
                        for (const r of range.getClientRects()) {
                          if (r.width > 0) tops.add(Math.round(r.top));
                        }
                      }
                      if (tops.size > 1) {
                        problems.push(heads[i] + ' ' + JSON.stringify(cell.textContent.trim())
                          + ' wraps onto ' + tops.size + ' lines');
                      }
                    });
                  }
                }
                for (const cell of document.querySelectorAll('table.grid td.clip')) {
                  const text = cell.textContent.trim();
                  if (cell.scrollWidth > cell.clientWidth && cell.title.trim() !== text) {
                    problems.push('the clipped note ' + JSON.stringify(text)
                      + ' has no full text to reach');
                  }
                }
              }
              return problems;",
            vec![json!(tables)],
        )
        .await
        .unwrap_or_else(|e| panic!("cannot measure the page: {e}"));
    serde_json::from_value(found).unwrap_or_default()
}

#[test]
fn no_page_of_the_tour_scrolls_sideways_on_a_phone() {
    let tour = tour();
    let problems: Vec<String> = tour
        .pages
        .iter()
        .flat_map(|p| {
            p.phone
                .iter()
                .map(move |problem| format!("{} {}: {problem}", p.label, p.url))
        })
        .collect();
    assert!(
        tour.pages.len() > 40,
        "the tour saw {} pages",
        tour.pages.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems at {}×{}:\n{}",
        problems.len(),
        PHONE.0,
        PHONE.1,
        problems.join("\n")
    );
}

#[test]
fn active_approvals_and_all_fit_a_laptop_screen() {
    let tour = tour();
    let mut problems = Vec::new();
    for label in WIDE_TABLES {
        let page = tour
            .pages
            .iter()
            .find(|p| p.label == label)
            .unwrap_or_else(|| panic!("the tour has no page {label:?}"));
        let laptop = page
            .laptop
            .as_ref()
            .unwrap_or_else(|| panic!("{label} was not measured at {}×{}", LAPTOP.0, LAPTOP.1));
        problems.extend(laptop.iter().map(|p| format!("{label} {}: {p}", page.url)));
    }
    assert!(
        problems.is_empty(),
        "{} problems at {}×{}:\n{}",
        problems.len(),
        LAPTOP.0,
        LAPTOP.1,
        problems.join("\n")
    );
}

/// The current page measured at a phone's size and, for the pages of [`WIDE_TABLES`], at a
/// laptop's: for the page tour.
pub async fn measure(browser: &Browser, label: &str) -> (Vec<String>, Option<Vec<String>>) {
    let wide = WIDE_TABLES.contains(&label);
    set_viewport(browser, PHONE).await;
    let phone = too_wide(browser, wide).await;
    let laptop = if wide {
        set_viewport(browser, LAPTOP).await;
        Some(too_wide(browser, true).await)
    } else {
        None
    };
    reset_viewport(browser).await;
    (phone, laptop)
}
