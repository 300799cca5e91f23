//! The stylesheet, script and icons, compiled into the binary so a deployed server needs no
//! files beside it.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::web::error::AppError;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/app.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../static/favicon.svg"),
    },
    Asset {
        name: "asciinema-player.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/asciinema-player.js"),
    },
    Asset {
        name: "asciinema-player.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/asciinema-player.css"),
    },
    Asset {
        name: "recordings.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/recordings.js"),
    },
    Asset {
        name: "terminal.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/terminal.js"),
    },
    Asset {
        name: "xterm.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/xterm.js"),
    },
    Asset {
        name: "xterm-addon-fit.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/xterm-addon-fit.js"),
    },
    Asset {
        name: "xterm.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/xterm.css"),
    },
];

/// Serves `/static/{name}`.
pub async fn serve(Path(name): Path<String>) -> Result<Response, AppError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or(AppError::NotFound)?;
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
