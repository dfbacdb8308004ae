//! The frontend: every `GET` no other router answers, from the built frontend
//! (`frontend/dist`), as the site's bucket and CDN serve it on AWS.
//!
//! Files of the built frontend with their content types, and `index.html` for extension-less
//! paths (the app's own routes). Paths are decoded and checked segment by segment, and the file
//! must resolve inside the directory: no `..`, no symlink leads out. Without a built frontend, `/`
//! explains how to build it and links the API.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Server, Shared};

/// `GET /` and the fallback of every route no other router has.
pub(super) fn router<F: Send + Sync + 'static>() -> Router<Arc<Server<F>>> {
    Router::new()
        .route("/", get(frontend::<F>))
        .fallback(frontend::<F>)
}

/// A file of the frontend, `index.html` for the app's routes, or the not-built page.
async fn frontend<F>(
    State(server): Shared<F>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let allow = [(header::ALLOW, "GET, HEAD")];
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            allow,
            "method not allowed\n",
        )
            .into_response();
    }
    let Some(relative) = site_path(uri.path()) else {
        return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
    };
    let dir = server.state.frontend.as_deref();
    let built = match dir {
        Some(dir) => tokio::fs::metadata(dir.join("index.html"))
            .await
            .is_ok_and(|m| m.is_file()),
        None => false,
    };
    match dir {
        Some(dir) if built => site_file(dir, &relative).await,
        _ if relative.as_os_str().is_empty() || relative == Path::new("index.html") => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1:8080");
            let page = not_built_page(dir, host);
            (
                [(header::CACHE_CONTROL, "no-cache")],
                axum::response::Html(page),
            )
                .into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            "not found: the frontend is not built (see /)\n",
        )
            .into_response(),
    }
}

/// The relative file path of a URL path: percent-decoded, each segment a plain name; `None` for
/// anything that could leave the directory (`..`, `.`, backslashes, drive letters, NUL).
fn site_path(path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path)?;
    let mut relative = PathBuf::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        let unsafe_segment =
            segment == "." || segment == ".." || segment.contains(['\\', ':', '\0']);
        if unsafe_segment {
            return None;
        }
        relative.push(segment);
    }
    Some(relative)
}

/// `%XX` escapes decoded; `None` for a malformed escape (a `%` without two hex digits, which
/// `percent-encoding` would keep as it is) or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let malformed = text.split('%').skip(1).any(|escape| {
        !escape
            .as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()?;
    Some(decoded.into_owned())
}

/// Answers `relative` from the built frontend in `root`: the file, else `index.html` for a path
/// without an extension (an app route), else 404.
async fn site_file(root: &Path, relative: &Path) -> Response {
    let wanted = if relative.as_os_str().is_empty() {
        Path::new("index.html")
    } else {
        relative
    };
    if let Some(bytes) = read_inside(root, wanted).await {
        return file_response(wanted, bytes);
    }
    if wanted.extension().is_none()
        && let Some(bytes) = read_inside(root, Path::new("index.html")).await
    {
        return file_response(Path::new("index.html"), bytes);
    }
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// The bytes of file `relative` under `root`, if it is a file that resolves (symlinks followed)
/// inside `root`.
async fn read_inside(root: &Path, relative: &Path) -> Option<Vec<u8>> {
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let file = tokio::fs::canonicalize(root.join(relative)).await.ok()?;
    if !file.starts_with(&root) || !tokio::fs::metadata(&file).await.ok()?.is_file() {
        return None;
    }
    tokio::fs::read(&file).await.ok()
}

/// A frontend file's response: its content type, and caching fit for a Vite build (hashed
/// `assets/` forever, everything else revalidated).
fn file_response(path: &Path, bytes: Vec<u8>) -> Response {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let content_type = match extension.as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let cache = if path.starts_with("assets") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, cache),
    ];
    (headers, bytes).into_response()
}

/// The page at `/` while there is no built frontend: how to build it, and the API's links.
fn not_built_page(dir: Option<&Path>, host: &str) -> String {
    let why = match dir {
        Some(dir) => format!(
            "The frontend is not built yet: <code>{}</code> has no <code>index.html</code>. \
             Build it, then reload this page:",
            escape(&dir.display().to_string())
        ),
        None => "The stack was started without a frontend: none was given with \
                 <code>--frontend-dir</code> and <code>frontend/dist</code> (relative to where it \
                 was started) is not built. Build it, then restart the stack from the repository \
                 root:"
            .to_owned(),
    };
    let mut links = String::new();
    for (href, what) in [
        ("/api/config", "client configuration"),
        ("/api/races?classId=1", "latest races of class 1"),
        (
            "/api/leaderboard?classId=1",
            "all-time leaderboard of class 1",
        ),
        ("/_local/status", "the embedded stack's status"),
    ] {
        let _ = writeln!(
            links,
            "<li><a href=\"{href}\"><code>{}</code></a> — {what}</li>",
            escape(href)
        );
    }
    let host = escape(host);
    format!(
        "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>Alleycat — embedded stack</title>
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
pre,code{{background:#f3f3f3;border-radius:3px;padding:0 .2em}}pre{{padding:.6em}}</style></head>
<body>
<h1>Alleycat — embedded stack</h1>
<p>{why}</p>
<pre>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<h2>API</h2>
<ul>
{links}</ul>
<p>Other endpoints: <code>/api/races/{{raceId}}?classId=</code>,
<code>/api/races/{{raceId}}/finals?classId=</code>, <code>/api/racers/{{racerId}}/bests?classId=</code>,
<code>/api/racers/{{racerId}}/races/{{raceId}}?classId=</code>, <code>/api/history/{{classId}}</code>.</p>
<h2>Feeding it</h2>
<p>The Kinesis API answers at <code>POST /</code>: point the AWS SDK (the simulator's
<code>--target kinesis</code>) at it with <code>AWS_ENDPOINT_URL=http://{host}</code>.</p>
</body>
</html>
"
    )
}

/// `text` escaped for HTML.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}
