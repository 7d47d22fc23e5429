//! The web client (`web/` in the repository), served at `/`: plain ES modules compiled
//! into the binary (no CDN, no bundler), so a supernode serves the same client it was built
//! with. `GET /` is the page; its modules and style sheet are under `/web/`.
//!
//! Merge [`router`] into the host's router. The page logs in through the demo partner
//! ([`crate::demo_partner`]) when that is on; otherwise a partner's site hands the page a
//! credential its own way (the page is then a starting point to copy, not a product).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One file of the client.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../web/index.html"),
    },
    Asset {
        path: "/web/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/app.js"),
    },
    Asset {
        path: "/web/signaling.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/signaling.js"),
    },
    Asset {
        path: "/web/call.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/call.js"),
    },
    Asset {
        path: "/web/conference.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/conference.js"),
    },
    Asset {
        path: "/web/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../web/style.css"),
    },
];

fn serve(asset: &'static Asset) -> Response {
    let mut r = asset.body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Always revalidate: a new build serves new modules.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// `GET /` and `GET /web/*` (the client's files).
pub fn router() -> Router {
    ASSETS.iter().fold(Router::new(), |r, asset| {
        r.route(asset.path, get(move || async move { serve(asset) }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        let served: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        for a in ASSETS {
            for line in a.body.lines() {
                let line = line.trim();
                let Some(rest) = line
                    .strip_prefix("import ")
                    .and_then(|l| l.split("from '").nth(1))
                else {
                    continue;
                };
                let file = rest.split('\'').next().unwrap_or_default();
                let path = format!("/web/{}", file.trim_start_matches("./"));
                assert!(served.contains(&path.as_str()), "{} imports {path}", a.path);
            }
            for needle in ["src=\"", "href=\""] {
                for part in a.body.split(needle).skip(1) {
                    let url = part.split('"').next().unwrap_or_default();
                    if url.starts_with("/web/") {
                        assert!(served.contains(&url), "{} links {url}", a.path);
                    }
                    assert!(
                        !url.starts_with("http"),
                        "{} loads {url} from elsewhere",
                        a.path
                    );
                }
            }
        }
    }
}
