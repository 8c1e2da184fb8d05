//! Every endpoint admind answers, in one table: its path (`admin_api::endpoints`), its method, the most body bytes it
//! takes, and its handler. PUT is taken wherever POST is, as the original rustkrazy's
//! admind (and its updater) do.

use crate::api::{Api, DATA_FILE_BYTES_MAX};
use crate::http::{refuse, Refusal, Reply, Request};
use crate::upload::Upload;
use admin_api::endpoints::*;
use boot::layout::{BOOT, ROOT_A};

/// Answers a request whose whole body is in.
pub type Answer = fn(&mut Api, &Request, &[u8]) -> Result<Reply, Refusal>;
/// Starts an upload the event loop feeds.
pub type Begin = fn(&mut Api, &Request) -> Result<Box<dyn Upload>, Refusal>;

pub enum Handler {
    /// The body (at most the route's limit) is read whole, then handled.
    Whole(Answer),
    /// The body (at most the route's limit, checked as it arrives) is fed to an upload.
    Upload(Begin),
}

pub struct Route {
    pub path: &'static str,
    /// POST (or PUT) if it changes something, else GET (or HEAD).
    pub post: bool,
    pub body_bytes_max: u64,
    pub handler: Handler,
}

/// Largest body of endpoints that take none or a small one.
pub const SMALL_BODY_BYTES_MAX: u64 = 4096;
const ROOT_IMAGE_BYTES_MAX: u64 = match boot::rootid::image_bytes_max(&ROOT_A) {
    Some(n) => n,
    None => 0,
};
/// A chunked root's plan at its largest.
const PLAN_BYTES_MAX: u64 = (boot::chunks::PLAN_HEAD_BYTES
    + boot::chunks::PLAN_PIECES_MAX as usize * boot::chunks::PIECE_RECORD_BYTES)
    as u64;
const BOOT_IMAGE_BYTES_MAX: u64 = match BOOT.size_bytes {
    Some(n) => n,
    None => 0,
};

const fn post(path: &'static str, body_bytes_max: u64, handler: Handler) -> Route {
    Route {
        path,
        post: true,
        body_bytes_max,
        handler,
    }
}

const fn get(path: &'static str, handler: Handler) -> Route {
    Route {
        path,
        post: false,
        // Any body is refused (400) once the head is read; one too large for any route,
        // at once (413).
        body_bytes_max: SMALL_BODY_BYTES_MAX,
        handler,
    }
}

use Handler::{Upload as Stream, Whole};
const SMALL: u64 = SMALL_BODY_BYTES_MAX;

pub static ROUTES: [Route; 21] = [
    post(
        UPDATE_ROOT,
        ROOT_IMAGE_BYTES_MAX,
        Stream(Api::begin_root_update),
    ),
    post(
        UPDATE_ROOT_CHUNKS,
        ROOT_IMAGE_BYTES_MAX + PLAN_BYTES_MAX,
        Stream(Api::begin_chunked_root_update),
    ),
    Route {
        path: ROOT_INDEX,
        post: false,
        body_bytes_max: SMALL_BODY_BYTES_MAX,
        handler: Stream(Api::running_root_index),
    },
    post(
        UPDATE_KERNEL,
        boot::slot::KERNEL_REGION_BYTES,
        Stream(Api::begin_kernel_update),
    ),
    post(
        UPDATE_BOOT,
        BOOT_IMAGE_BYTES_MAX,
        Stream(Api::begin_boot_update),
    ),
    post(UPDATE_CMDLINE, SMALL, Whole(Api::update_cmdline)),
    post(UPDATE_MBR, SMALL, Whole(Api::update_mbr)),
    post(SWITCH, SMALL, Whole(Api::switch)),
    post(COMMIT, SMALL, Whole(Api::commit)),
    post(REBOOT, SMALL, Whole(Api::reboot)),
    post(SHUTDOWN, SMALL, Whole(Api::shutdown)),
    get(STATUS, Whole(Api::status)),
    get(LOGS, Whole(Api::logs)),
    get(DATA_READ, Whole(Api::data_read)),
    get(DATA_LIST, Whole(Api::data_list)),
    post(
        DATA_WRITE,
        DATA_FILE_BYTES_MAX,
        Stream(Api::begin_data_write),
    ),
    post(DATA_MKDIR, SMALL, Whole(Api::data_mkdir)),
    post(DATA_REMOVE, SMALL, Whole(Api::data_remove)),
    post(DATA_REMOVEDIR, SMALL, Whole(Api::data_removedir)),
    get(PROC_TOP, Whole(Api::proc_top)),
    post(PROC_KILL, SMALL, Whole(Api::kill)),
];

/// The route for `req`: 404 for a path admind does not have, 405 for the wrong method.
pub fn find(req: &Request) -> Result<&'static Route, Refusal> {
    let route = ROUTES
        .iter()
        .find(|r| r.path == req.path)
        .ok_or_else(|| refuse(404, format!("no endpoint {}", req.path)))?;
    let allowed: &[&str] = if route.post {
        &["POST", "PUT"]
    } else {
        &["GET", "HEAD"]
    };
    if allowed.contains(&req.method.as_str()) {
        Ok(route)
    } else {
        Err(refuse(405, "wrong method for this path"))
    }
}

/// The most body bytes `req` may send; checked before reading anything.
pub fn body_limit(req: &Request) -> u64 {
    find(req).map_or(SMALL_BODY_BYTES_MAX, |r| r.body_bytes_max)
}

/// Starts an upload for `req` if its route streams its body: `None` for every other
/// request.
pub fn begin_upload(api: &mut Api, req: &Request) -> Option<Result<Box<dyn Upload>, Reply>> {
    let Ok(Route {
        handler: Handler::Upload(begin),
        ..
    }) = find(req)
    else {
        return None;
    };
    Some(begin(api, req).map_err(Reply::from))
}

/// Answers an authenticated request whose whole body (at most [`body_limit`]) is
/// in `body`; uploads go through [`begin_upload`] instead.
pub fn handle(api: &mut Api, req: &Request, body: &[u8]) -> Reply {
    let result = find(req).and_then(|route| match route.handler {
        Handler::Whole(handle) => handle(api, req, body),
        Handler::Upload(_) => Err(refuse(500, "an upload was not started as one")),
    });
    result.unwrap_or_else(Reply::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(head: &str) -> u16 {
        let req = crate::http::parse_head(head.as_bytes()).unwrap();
        find(&req).map_or_else(|r| r.status, |_| 200)
    }

    #[test]
    fn each_path_once_put_as_post_head_as_get() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(ROUTES[..i].iter().all(|o| o.path != r.path), "{}", r.path);
        }
        assert_eq!(status_of("PUT /commit HTTP/1.1\r\n\r\n"), 200);
        assert_eq!(status_of("POST /commit HTTP/1.1\r\n\r\n"), 200);
        assert_eq!(status_of("GET /commit HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status_of("HEAD /status HTTP/1.1\r\n\r\n"), 200);
        assert_eq!(status_of("POST /status HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status_of("GET /nothing HTTP/1.1\r\n\r\n"), 404);
    }
}
