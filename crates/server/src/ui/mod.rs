//! The dashboard at `/ui`: server-rendered HTML pages over the same [`Store`] the APIs use.
//!
//! * Sign-in takes a store's API secret (the one the APIs take), checks it with
//!   [`Store::authenticate`] and starts a server-side session ([`session`]); the browser only
//!   holds a random session id in an HttpOnly, SameSite=Strict cookie. Each request re-checks
//!   that the key that signed in is still live, so revoking it ends the session at once.
//! * Every POST form carries the session's CSRF token (the sign-in form a double-submit token),
//!   compared in constant time; a missing or wrong one is answered 403.
//! * Every response carries a Content-Security-Policy without inline scripts or styles, refuses
//!   framing and sends no referrer. Pages are `no-store`; the stylesheet and script are cached
//!   for good under a versioned URL.
//!
//! Everything here is plain HTML forms and links; the one small script only improves what
//! already works without it.
//!
//! [`Store`]: waybill_store::Store
//! [`Store::authenticate`]: waybill_store::Store::authenticate

mod actions;
mod automation_forms;
mod exceptions;
mod format;
mod orders;
mod pages;
mod render;
mod returns;
pub mod session;
pub mod throttle;
mod webhooks;

use waybill_core::time;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, LOCATION, REFERRER_POLICY, RETRY_AFTER, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use waybill_store::{StoreError, secrets};

use crate::AppState;
use render::{ASSET_VERSION, Layout, error_page, page};
use session::{LOGIN_COOKIE, SESSION_COOKIE, Session};

/// How the dashboard learns how browsers reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DashboardSettings {
    /// The public URL's scheme is `https` (`public_url`): every cookie is `Secure`, whatever
    /// the request's headers say.
    pub public_https: bool,
    /// A reverse proxy in front is trusted (`trust_proxy`): the last `X-Forwarded-For` address
    /// is the client's, for sign-in throttling. `X-Forwarded-Proto: https` (or `Forwarded:
    /// proto=https`) makes cookies `Secure` either way: a forged one only hardens the forger's
    /// own cookie.
    pub trust_proxy: bool,
}

impl DashboardSettings {
    /// Whether cookies set for this request are `Secure`.
    pub fn secure(&self, headers: &HeaderMap) -> bool {
        self.public_https || session::is_https(headers)
    }

    /// The address sign-in failures are counted against.
    pub fn client_ip(
        &self,
        headers: &HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> std::net::IpAddr {
        let peer = extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let forwarded = self
            .trust_proxy
            .then(|| {
                headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
                    .next_back()
            })
            .flatten();
        forwarded
            .or(peer)
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }
}

/// The dashboard's routes, to be nested at `/ui`. Sessions and the sign-in throttle live in
/// the store, so every server on one database shares them.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/exceptions", get(exceptions::exceptions))
        .route("/orders", get(orders::orders))
        .route("/orders.csv", get(orders::orders_csv))
        .route("/orders/{order}", get(pages::order))
        .route(
            "/orders/{order}/fulfillments/{fulfillment}",
            get(pages::fulfillment),
        )
        .route(
            "/orders/{order}/fulfillments/{fulfillment}/status",
            post(actions::post_status),
        )
        .route(
            "/orders/{order}/fulfillments/{fulfillment}/tracking",
            post(actions::post_tracking),
        )
        .route(
            "/orders/{order}/fulfillments/{fulfillment}/cancel",
            get(actions::confirm_cancel).post(actions::cancel),
        )
        .route(
            "/webhooks",
            get(webhooks::webhooks).post(webhooks::create_webhook),
        )
        .route("/webhooks/new", get(webhooks::new_webhook))
        .route(
            "/webhooks/{webhook}",
            get(webhooks::webhook).post(webhooks::edit_webhook),
        )
        .route("/webhooks/{webhook}/enabled", post(webhooks::set_enabled))
        .route("/webhooks/{webhook}/rotate", post(webhooks::rotate_secret))
        .route(
            "/webhooks/{webhook}/delete",
            get(webhooks::confirm_delete).post(webhooks::delete_webhook),
        )
        .route("/webhooks/{webhook}/redeliver", post(webhooks::redeliver))
        .route(
            "/automations",
            get(pages::automations).post(automation_forms::create),
        )
        .route("/automations/new", get(automation_forms::new_form))
        .route("/automations/{automation}", get(pages::automation))
        .route(
            "/automations/{automation}/edit",
            get(automation_forms::edit_form).post(automation_forms::edit),
        )
        .route(
            "/automations/{automation}/delete",
            get(automation_forms::confirm_delete).post(automation_forms::delete),
        )
        .route("/orders/{order}/returns", post(returns::create))
        .route("/orders/{order}/returns/new", get(returns::new_form))
        .route("/returns", get(returns::list))
        .route("/returns.csv", get(returns::export))
        .route("/returns/{return_id}", get(returns::show))
        .route("/returns/{return_id}/status", post(returns::post_status))
        .route("/import", get(pages::import_form).post(pages::import))
        .route("/static/ui.css", get(stylesheet))
        .route("/static/ui.js", get(script))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
}

/// `Content-Security-Policy` of every dashboard response: only our own stylesheet and script,
/// forms only to us, no framing, no plugins, no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The signed-in store of a request. Without a live session the request is sent to the
/// sign-in page; a session whose key was revoked is ended first.
pub struct Signed {
    pub session: Session,
    pub cookie: String,
}

impl Signed {
    /// The layout of a page for this session.
    pub fn layout(&self, title: impl Into<String>, section: &'static str) -> Layout {
        let mut layout = Layout::new(title, section);
        layout.store_id = Some(self.session.store_id.clone());
        layout.csrf = Some(self.session.csrf.clone());
        layout
    }

    pub fn store_id(&self) -> &str {
        &self.session.store_id
    }

    /// Whether the form carries the session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, form: &Form) -> bool {
        session::tokens_match(&self.session.csrf, form.get("csrf").unwrap_or_default())
    }

    /// The 403 page for a form without the right token.
    pub fn forbidden(&self) -> Response {
        forbidden(self.layout("Forbidden", ""))
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(cookie) = session::cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned)
        else {
            return Err(redirect("/ui/login"));
        };
        let secure = state.dashboard.secure(&parts.headers);
        let session = match session::get(state.store.as_ref(), &cookie, time::now()).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(signed_out(secure, "/ui/login?ended=expired")),
            Err(e) => return Err(store_error(e, Layout::new("Unavailable", ""))),
        };
        // The keys that signed in must still be live: revocation ends the session at once.
        let keys = match state.store.list_api_keys(&session.store_id).await {
            Ok(keys) => keys,
            Err(e) => return Err(store_error(e, Layout::new("Unavailable", ""))),
        };
        let live = !session.key_ids.is_empty()
            && session
                .key_ids
                .iter()
                .all(|id| keys.iter().any(|k| &k.id == id && k.revoked_at.is_none()));
        if !live {
            if let Err(e) = session::remove(state.store.as_ref(), &cookie).await {
                return Err(store_error(e, Layout::new("Unavailable", "")));
            }
            return Err(signed_out(secure, "/ui/login?ended=revoked"));
        }
        Ok(Signed { session, cookie })
    }
}

/// A signed-in user's form post whose CSRF token matched the session's: every state-changing
/// dashboard route takes its body through this (a post without the right token is the 403
/// page, and nothing runs).
pub struct Posted(pub Signed, pub Form);

impl axum::extract::FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let request = axum::extract::Request::from_parts(parts, body);
        let body = match Bytes::from_request(request, state).await {
            Ok(body) => body,
            Err(rejection) => return Err(rejection.into_response()),
        };
        let form = Form::parse(&body);
        if !signed.csrf_ok(&form) {
            return Err(signed.forbidden());
        }
        Ok(Posted(signed, form))
    }
}

const GENERIC_ERROR: &str = "Something went wrong on our side. Try again shortly.";

/// A submitted `application/x-www-form-urlencoded` body (or query string): the first value of
/// each name, and every value of names given more than once.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Form {
        Form(url::form_urlencoded::parse(bytes).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// 303 See Other to a path of ours.
pub fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// A redirect that also deletes the session cookie.
fn signed_out(secure: bool, to: &str) -> Response {
    let mut response = redirect(to);
    append_cookie(
        &mut response,
        &session::clear_cookie(SESSION_COOKIE, secure),
    );
    response
}

fn append_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

pub fn forbidden(layout: Layout) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from this dashboard. Go back, reload the page \
         and try again.",
        &layout,
    )
}

pub fn not_found_page(layout: Layout) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "There is nothing here. It may have been deleted, or the link is wrong.",
        &layout,
    )
}

/// A store failure as a page: "not found" for a missing order or fulfillment, 503 when the
/// database is unavailable, a generic 500 otherwise (the detail goes to the log only).
pub fn store_error(e: StoreError, layout: Layout) -> Response {
    match e {
        StoreError::Domain(
            waybill_core::DomainError::OrderNotFound(_)
            | waybill_core::DomainError::FulfillmentNotFound(_)
            | waybill_core::DomainError::StoreNotFound(_)
            | waybill_core::DomainError::Invalid(_),
        ) => not_found_page(layout),
        StoreError::Domain(e) => error_page(StatusCode::BAD_REQUEST, &e.to_string(), &layout),
        StoreError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "dashboard: database unavailable");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is not answering right now. Try again shortly.",
                &layout,
            )
        }
        StoreError::Internal(detail) => {
            tracing::error!(error = %detail, "dashboard: storage failure");
            error_page(StatusCode::INTERNAL_SERVER_ERROR, GENERIC_ERROR, &layout)
        }
    }
}

async fn not_found() -> Response {
    not_found_page(Layout::new("Not found", ""))
}

/// The landing page: the exceptions view.
async fn home() -> Response {
    redirect("/ui/exceptions")
}

#[derive(Serialize)]
struct LoginBody {
    login_csrf: String,
    /// Why the form is shown again, as fixed text.
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: axum::extract::RawQuery,
) -> Response {
    let query = Form::parse(query.0.unwrap_or_default().as_bytes());
    let notice = match query.get("ended") {
        Some("revoked") => Some("Your session ended because its API key was revoked."),
        Some("expired") => Some("Your session has expired. Sign in again."),
        Some("signed-out") => Some("You have signed out."),
        _ => None,
    };
    login_page(
        state.dashboard.secure(&headers),
        StatusCode::OK,
        notice,
        None,
    )
}

/// The sign-in form with a fresh double-submit token in both a cookie and a hidden field.
fn login_page(
    secure: bool,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<&'static str>,
) -> Response {
    let token = session::random_token();
    let mut response = page(
        status,
        "login.html",
        &Layout::new("Sign in", ""),
        &LoginBody {
            login_csrf: token.clone(),
            notice,
            error,
        },
    );
    append_cookie(
        &mut response,
        &session::set_cookie(LOGIN_COOKIE, &token, secure),
    );
    response
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !session::tokens_match(expected, form.get("csrf").unwrap_or_default()) {
        return forbidden(Layout::new("Forbidden", ""));
    }
    let secure = state.dashboard.secure(&headers);
    let store = state.store.as_ref();
    let ip = state.dashboard.client_ip(&headers, &extensions);
    match throttle::check(store, ip, time::now()).await {
        Ok(Ok(())) => {}
        Ok(Err(wait)) => return too_many(wait),
        Err(e) => return store_error(e, Layout::new("Sign in", "")),
    }
    let secret = form.get("secret").unwrap_or_default().trim();
    let refused = async || {
        match throttle::failed(store, ip, time::now()).await {
            Ok(Some(wait)) => {
                tracing::warn!(client = %ip, wait_seconds = wait.as_secs(), "dashboard sign-in failures: throttling");
            }
            Ok(None) => {}
            Err(e) => return store_error(e, Layout::new("Sign in", "")),
        }
        login_page(
            secure,
            StatusCode::UNAUTHORIZED,
            None,
            Some("That is not a live API secret of any store."),
        )
    };
    // Secrets Waybill issues all have one prefix and length: anything else cannot match, so
    // it is refused without asking the database.
    if !secret.starts_with(secrets::SECRET_PREFIX) || secret.len() > 256 {
        return refused().await;
    }
    let store_id = match state.store.authenticate(secret).await {
        Ok(Some(store_id)) => store_id,
        Ok(None) => return refused().await,
        Err(e) => return store_error(e, Layout::new("Sign in", "")),
    };
    // Remember which key signed in (by id, never the secret), so that revoking it ends the
    // session. Listings show each key's display prefix; the secret's prefix picks it out (two
    // live keys of one store sharing a prefix are both remembered, and either one's revocation
    // ends the session).
    let prefix = secrets::display_prefix(secret);
    let key_ids: Vec<String> = match state.store.list_api_keys(&store_id).await {
        Ok(keys) => keys
            .into_iter()
            .filter(|k| k.revoked_at.is_none() && k.prefix == prefix)
            .map(|k| k.id)
            .collect(),
        Err(e) => return store_error(e, Layout::new("Sign in", "")),
    };
    if key_ids.is_empty() {
        // Revoked between the two reads.
        return refused().await;
    }
    // A new id on every sign-in; a session the browser already had ends.
    if let Some(old) = session::cookie(&headers, SESSION_COOKIE)
        && let Err(e) = session::remove(store, old).await
    {
        return store_error(e, Layout::new("Sign in", ""));
    }
    let id = match session::create(store, store_id, key_ids, time::now()).await {
        Ok(id) => id,
        Err(e) => return store_error(e, Layout::new("Sign in", "")),
    };
    if let Err(e) = throttle::succeeded(store, ip).await {
        // The session is made; a stale failure count only delays a later sign-in.
        tracing::warn!(error = %e, client = %ip, "dashboard sign-in: failures not cleared");
    }
    let mut response = redirect("/ui/exceptions");
    append_cookie(
        &mut response,
        &session::set_cookie(SESSION_COOKIE, &id, secure),
    );
    append_cookie(&mut response, &session::clear_cookie(LOGIN_COOKIE, secure));
    response
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted(signed, _): Posted,
) -> Response {
    if let Err(e) = session::remove(state.store.as_ref(), &signed.cookie).await {
        return store_error(e, signed.layout("Sign out", ""));
    }
    signed_out(
        state.dashboard.secure(&headers),
        "/ui/login?ended=signed-out",
    )
}

/// 429 with `Retry-After`: too many failed sign-ins from this address.
fn too_many(wait: std::time::Duration) -> Response {
    let secs = throttle::retry_after_secs(wait);
    let mut response = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        &format!(
            "Too many failed sign-ins from your address. Wait {secs} seconds, then try again."
        ),
        &Layout::new("Too many attempts", ""),
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    response
}

async fn stylesheet(query: axum::extract::RawQuery) -> Response {
    asset(render::CSS, "text/css; charset=utf-8", query)
}

async fn script(query: axum::extract::RawQuery) -> Response {
    asset(render::JS, "text/javascript; charset=utf-8", query)
}

/// A static asset. Pages link it with `?v=<hash of the assets>`, so such a URL is cached for a
/// year; one without (or with an old) version only for five minutes.
fn asset(
    body: &'static str,
    content_type: &'static str,
    query: axum::extract::RawQuery,
) -> Response {
    let current = Form::parse(query.0.unwrap_or_default().as_bytes())
        .get("v")
        .is_some_and(|v| v == ASSET_VERSION.as_str());
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
