//! The wizard and the approval flow with the keyboard alone: WebDriver key actions (Tab,
//! Shift+Tab, Space, Enter and typing), never a click. Every control reached shows a visible
//! focus indicator.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::json;

use crate::harness::{Browser, NAVIGATION_TIMEOUT};
use crate::support::{TestApp, spawn_demo_app};

const DEMO_PASSWORD: &str = "portcullis-demo";
/// How many Tab presses may lead from one control to the next one wanted.
const MAX_TABS: usize = 80;

/// Presses each key in turn (down, then up), holding `modifier` throughout if given.
async fn press(browser: &Browser, modifier: Option<Key>, keys: &[char]) {
    let mut actions = KeyActions::new("keyboard".into());
    if let Some(m) = modifier {
        actions = actions.then(KeyAction::Down { value: m.into() });
    }
    for &key in keys {
        actions = actions
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
    }
    if let Some(m) = modifier {
        actions = actions.then(KeyAction::Up { value: m.into() });
    }
    browser
        .client
        .perform_actions(actions)
        .await
        .unwrap_or_else(|e| panic!("cannot press {keys:?}: {e}"));
}

/// Types `text` into whatever has the focus.
async fn type_text(browser: &Browser, text: &str) {
    let keys: Vec<char> = text.chars().collect();
    press(browser, None, &keys).await;
}

/// A short description of the focused element, for messages.
async fn focused(browser: &Browser) -> String {
    let described = browser
        .client
        .execute(
            "const e = document.activeElement;
             if (!e) return 'nothing';
             return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
               + (e.name ? '[name=' + e.name + ']' : '') + (e.value ? '[value=' + e.value + ']' : '')
               + ' ' + JSON.stringify((e.innerText || '').trim().slice(0, 40));",
            vec![],
        )
        .await
        .expect("describe the focused element");
    described.as_str().unwrap_or_default().to_owned()
}

/// Presses Tab (or Shift+Tab when `back`) until the focused element matches `css`, then checks
/// that the focus is visible on it (an outline or a box shadow).
async fn tab_to(browser: &Browser, css: &str, back: bool) {
    let mut path = Vec::new();
    for _ in 0..MAX_TABS {
        let modifier = back.then_some(Key::Shift);
        press(browser, modifier, &[Key::Tab.into()]).await;
        let state = browser
            .client
            .execute(
                "const e = document.activeElement;
                 const s = getComputedStyle(e);
                 const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
                 return [e.matches(arguments[0]), outline || s.boxShadow !== 'none'];",
                vec![json!(css)],
            )
            .await
            .expect("read the focus");
        if state[0] == json!(true) {
            assert_eq!(
                state[1],
                json!(true),
                "the focus on {css:?} ({}) is not visible",
                focused(browser).await
            );
            return;
        }
        path.push(focused(browser).await);
    }
    panic!(
        "{MAX_TABS} presses of {} on {} never reached {css:?}; the focus went through:\n{}",
        if back { "Shift+Tab" } else { "Tab" },
        browser.url().await,
        path.join("\n")
    );
}

/// Presses `key` and waits until the page it leads to has loaded.
async fn press_to_navigate(browser: &Browser, key: Key) {
    let old_page = browser
        .client
        .find(Locator::Css("html"))
        .await
        .expect("the page's html element");
    let before = browser.url().await;
    press(browser, None, &[key.into()]).await;
    let deadline = Instant::now() + NAVIGATION_TIMEOUT;
    loop {
        let gone = match old_page.tag_name().await {
            Err(e) => e.is_stale_element_reference(),
            Ok(_) => false,
        };
        let complete = browser
            .client
            .execute("return document.readyState", vec![])
            .await
            .is_ok_and(|s| s == json!("complete"));
        if gone && complete {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pressing {key:?} on {before} (focus on {}) loaded no new page",
            focused(browser).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in by keyboard: the username field has the focus when the page opens.
async fn keyboard_login(browser: &Browser, app: &TestApp, username: &str) {
    browser.goto(app, "/login").await;
    type_text(browser, username).await;
    tab_to(browser, "#password", false).await;
    type_text(browser, DEMO_PASSWORD).await;
    press_to_navigate(browser, Key::Enter).await;
    assert_eq!(
        browser.path().await,
        "/dashboard",
        "{username} is signed in"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alice_requests_and_bob_approves_with_the_keyboard_alone() {
    let app = spawn_demo_app().await;
    let alice = Browser::new().await;
    keyboard_login(&alice, &app, "alice").await;

    // Dashboard > Create Session.
    tab_to(&alice, "a.button.primary", false).await;
    press_to_navigate(&alice, Key::Enter).await;
    assert_eq!(alice.text("h2").await, "Request Type");

    // Search (Enter in the search field submits it), then tick the one match with Space.
    tab_to(&alice, "#q", false).await;
    type_text(&alice, "break-glass").await;
    press_to_navigate(&alice, Key::Enter).await;
    assert_eq!(alice.texts("input[name=activity]").await.len(), 1);
    tab_to(&alice, "input[name=activity]", false).await;
    press(&alice, None, &[Key::Space.into()]).await;
    tab_to(&alice, "button.primary[value=next]", false).await;
    press_to_navigate(&alice, Key::Enter).await;

    // Resource Selection: the first two rows, then back up to check the first one is ticked.
    assert_eq!(alice.text("h2").await, "Resource Selection");
    let names = alice
        .texts("#resources tbody tr:nth-child(-n+2) td:nth-child(2)")
        .await;
    assert_eq!(names.len(), 2, "{names:?}");
    tab_to(
        &alice,
        "#resources tbody tr:nth-child(1) input[name=pick]",
        false,
    )
    .await;
    press(&alice, None, &[Key::Space.into()]).await;
    tab_to(
        &alice,
        "#resources tbody tr:nth-child(2) input[name=pick]",
        false,
    )
    .await;
    press(&alice, None, &[Key::Space.into()]).await;
    tab_to(
        &alice,
        "#resources tbody tr:nth-child(1) input[name=pick]",
        true,
    )
    .await;
    tab_to(&alice, "button.primary[value=next]", false).await;
    press_to_navigate(&alice, Key::Enter).await;

    assert_eq!(alice.text("h2").await, "Notes");
    tab_to(&alice, "#notes", false).await;
    type_text(&alice, "Kernel patching").await;
    // Enter in a one-line field means Next (the form's first submit button), not Back.
    tab_to(&alice, "#ticket", false).await;
    press_to_navigate(&alice, Key::Enter).await;

    assert_eq!(alice.text("h2").await, "Scheduling");
    tab_to(&alice, "button.primary[value=next]", false).await; // Now is ticked
    press_to_navigate(&alice, Key::Enter).await;

    assert_eq!(alice.text("h2").await, "Review");
    let review = alice.text("#review").await;
    assert!(
        review.contains(&names[0]) && review.contains(&names[1]),
        "{names:?} in {review}"
    );
    tab_to(&alice, "button[value=finish]", false).await;
    press_to_navigate(&alice, Key::Enter).await;
    assert_eq!(alice.path().await, "/dashboard");
    assert_eq!(
        alice.text(".flash").await,
        "Created 2 activity sessions: Waiting for Approval."
    );
    assert_eq!(
        alice.texts("#sessions tbody .status").await,
        ["Waiting for Approval", "Waiting for Approval"]
    );

    // bob: Approvals from the main navigation, tick the request (both resources), comment,
    // Approve.
    let bob = Browser::new().await;
    keyboard_login(&bob, &app, "bob").await;
    tab_to(&bob, r#".mainnav a[href="/approvals"]"#, false).await;
    press_to_navigate(&bob, Key::Enter).await;
    assert_eq!(
        bob.texts("#approvals tbody td:nth-child(4)").await,
        ["Alice Archer"]
    );
    assert_eq!(
        bob.texts("#approvals tbody td:nth-child(5)").await,
        ["2 resources"]
    );
    tab_to(
        &bob,
        "#approvals tbody tr:nth-child(1) input[name=request]",
        false,
    )
    .await;
    press(&bob, None, &[Key::Space.into()]).await;
    tab_to(&bob, "#comment", false).await;
    type_text(&bob, "Go ahead").await;
    tab_to(&bob, "button[value=approve]", false).await;
    press_to_navigate(&bob, Key::Enter).await;
    assert_eq!(bob.text(".flash").await, "Approved 2 requests.");
    assert_eq!(
        bob.texts("#approvals tbody td.empty").await,
        ["Nothing is waiting for your approval."]
    );

    // alice's open Dashboard follows.
    alice
        .wait_for_text(
            "#sessions tbody .status",
            "Available",
            Duration::from_secs(10),
        )
        .await;
    bob.close().await;
    alice.close().await;
}
