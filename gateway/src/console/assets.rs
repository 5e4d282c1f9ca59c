//! The console's files, embedded in the binary at build time (`gateway/console/`, in
//! every profile), and `GET /assets/{path}` for the ones browsers load: styles,
//! scripts, images and the vendored libraries with their licences.

use std::borrow::Cow;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

use crate::errors::HttpError;

#[derive(rust_embed::Embed)]
#[folder = "console/"]
struct Files;

/// The folders served under `/assets/`; page bodies and layouts are not.
const SERVED: [&str; 4] = ["css/", "js/", "img/", "vendor/"];

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    data: Cow<'static, [u8]>,
    sha256: [u8; 32],
}

impl Asset {
    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The file as UTF-8 text, if it is.
    pub fn text(&self) -> Option<String> {
        std::str::from_utf8(&self.data).ok().map(str::to_string)
    }

    /// The file's SHA-256.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// The strong ETag of the file: the first 16 bytes of its SHA-256, in hex.
    pub fn etag(&self) -> String {
        let hex: String = self.sha256[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("\"{hex}\"")
    }
}

/// The embedded file at `path` (relative to `gateway/console/`).
pub fn asset(path: &str) -> Option<Asset> {
    Files::get(path).map(|f| Asset {
        sha256: f.metadata.sha256_hash(),
        data: f.data,
    })
}

/// The `Content-Type` of a file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, e)| e);
    match extension.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "md" | "txt" => "text/plain; charset=utf-8",
        // LICENSE, NOTICE.
        "" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// `GET /assets/{path}`: the file with its type and ETag (304 when the browser has
/// it), revalidated on each use (`Cache-Control: no-cache`); 404 for anything else.
pub async fn serve(req: HttpRequest) -> Result<HttpResponse, HttpError> {
    let path = req.match_info().get("path").unwrap_or("");
    let servable = SERVED.iter().any(|folder| path.starts_with(folder));
    let file = servable
        .then(|| asset(path))
        .flatten()
        .ok_or_else(|| HttpError::not_found("no such console asset"))?;
    let etag = file.etag();
    if not_modified(&req, &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .finish());
    }
    let body = match file.data {
        Cow::Borrowed(bytes) => Bytes::from_static(bytes),
        Cow::Owned(bytes) => Bytes::from(bytes),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type(path)))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_extension() {
        assert_eq!(content_type("js/api.js"), "text/javascript; charset=utf-8");
        assert_eq!(
            content_type("vendor/lightweight-charts/lightweight-charts.standalone.production.mjs"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("css/console.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("img/icons.svg"), "image/svg+xml");
        assert_eq!(
            content_type("vendor/qrcode-generator/LICENSE"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type("x.bin"), "application/octet-stream");
    }
}
