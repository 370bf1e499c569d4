//! Routing a request and a route's own answers before anything is forwarded (SPEC §8, §11,
//! §12): access lists, the rate limit, redirects and `respond`, files, and the internal
//! redirects of `try_files`.

use super::files;
use super::request::{facts, local_addr, route_target};
use super::{Ctx, Switchyard, respond};
use crate::config::Respond;
use crate::edge;
use crate::policy::{self, Rejection, RouteState};
use crate::router;
use crate::vars;
use bytes::Bytes;
use http::HeaderValue;
use pingora::ErrorType;
use pingora::prelude::*;
use pingora::proxy::Session;
use std::sync::Arc;
use std::time::Instant;

impl Switchyard {
    /// The route for the request as it stands (its path normalized first).
    fn route(
        &self,
        session: &Session,
        ctx: &Ctx,
    ) -> std::result::Result<Option<usize>, router::InvalidPath> {
        let req = session.req_header();
        let (host, path) = route_target(req);
        let router = &ctx.state.router;
        router::normalize_path(path).map(|path| {
            let listener = if router.needs_listener() {
                local_addr(session).and_then(|a| edge::position(&ctx.state.listeners, a))
            } else {
                None
            };
            router.route(&router::Request {
                host,
                path: &path,
                listener,
                method: &req.method,
                headers: &req.headers,
            })
        })
    }

    /// Route the request (SPEC §11) and give its route's own answers: policies, a `respond` or
    /// redirect, files (SPEC §12). A `try_files` fallback routes it again, as nginx's internal
    /// redirect does, at most MAX_INTERNAL_REDIRECTS times. `None` when the request was
    /// answered here; else the route whose pool proxies it.
    pub(super) async fn route_request(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
    ) -> Result<Option<usize>> {
        let mut redirects = 0;
        loop {
            let route_index = match self.route(session, ctx) {
                Ok(Some(i)) => i,
                Ok(None) => {
                    ctx.send_error(session, 404, true, None).await?;
                    return Ok(None);
                }
                Err(router::InvalidPath) => {
                    // `..` above the root or a broken `%` escape: nginx answers 400 too.
                    ctx.send_error(session, 400, false, None).await?;
                    return Ok(None);
                }
            };
            ctx.route = Some(route_index);
            if ctx.state.routes[route_index].plain {
                return Ok(Some(route_index));
            }
            // Only a route with policies pays for a second handle on the state.
            let state = Arc::clone(&ctx.state);
            let route = &state.routes[route_index];
            if route.policy.internal && redirects == 0 {
                // nginx `internal`: only a fallback reaches it.
                ctx.send_error(session, 404, true, None).await?;
                return Ok(None);
            }
            if self.route_answers(session, ctx, route).await? {
                return Ok(None);
            }
            let Some(files) = route.policy.static_files.as_deref() else {
                return Ok(Some(route_index));
            };
            ctx.served_static = true;
            let site = files::Site {
                files,
                prefix: &route.prefix,
                compress: route.policy.compress,
            };
            match files::serve(session, ctx, &site).await? {
                files::Served::Answered => return Ok(None),
                files::Served::Upstream => {
                    ctx.served_static = false;
                    return Ok(Some(route_index));
                }
                files::Served::Redirect(target) => {
                    ctx.served_static = false;
                    redirects += 1;
                    let uri = internal_target(&session.req_header().uri, &target)
                        .filter(|_| redirects <= MAX_INTERNAL_REDIRECTS);
                    let Some(uri) = uri else {
                        // nginx: "rewrite or internal redirection cycle" (500).
                        ctx.send_error(session, 500, true, None).await?;
                        return Ok(None);
                    };
                    session.req_header_mut().set_uri(uri);
                }
            }
        }
    }

    /// A route's own answers, in SPEC §8 order: allow/deny (403), rate limit (429), then its
    /// `respond` or redirect.
    /// `true` when the request was answered here.
    pub(super) async fn route_answers(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        route: &RouteState,
    ) -> Result<bool> {
        let p = &route.policy;
        let client = ctx.client_ip();
        if let Some(access) = &p.access
            && !client.is_some_and(|ip| access.permits(ip))
        {
            ctx.reject(Rejection::Denied);
            ctx.send_error(session, 403, true, None).await?;
            return Ok(true);
        }
        if let (Some(limit), Some(limiter)) = (&p.rate_limit, &route.limiter)
            && let Some(key) = policy::rate_key(&limit.key, session.req_header(), client)
            && let Err(wait) = limiter.check(&key, Instant::now())
        {
            ctx.reject(Rejection::RateLimited);
            let secs = policy::retry_after_secs(wait);
            let retry_after = (http::header::RETRY_AFTER, HeaderValue::from(secs));
            ctx.send_error(session, 429, true, Some(retry_after))
                .await?;
            return Ok(true);
        }
        if let Some(answer) = &p.respond {
            if answer.status == Respond::CLOSE {
                ctx.closed_unanswered = true;
                return Error::e_explain(ErrorType::HTTPStatus(Respond::CLOSE), "respond 444");
            }
            let (body, headers) = {
                let facts = facts(session, ctx, None);
                let body = match &answer.body_template {
                    Some(t) => Bytes::from(t.render(&facts).into_owned()),
                    None => answer.body.clone(),
                };
                let headers: Vec<_> = answer
                    .headers
                    .iter()
                    .filter_map(|(n, v)| Some((n.clone(), policy::field_value(v, &facts)?)))
                    .collect();
                (body, headers)
            };
            let ctx = &*ctx;
            respond::send_answer(session, answer.status, headers, body, |s, r| {
                ctx.decorate(s, r)
            })
            .await?;
            return Ok(true);
        }
        if let Some(redirect) = &p.redirect {
            let location = redirect.to.render(&facts(session, ctx, None));
            let location = (http::header::LOCATION, vars::header_value(&location));
            ctx.send_error(session, redirect.status, true, Some(location))
                .await?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// nginx's limit of internal redirects for one request.
const MAX_INTERNAL_REDIRECTS: u32 = 10;

/// The request's URI after an internal redirect to `target` (a path and query): the scheme
/// and authority of an absolute-form or HTTP/2 request are kept, so it routes by host as before.
fn internal_target(old: &http::Uri, target: &str) -> Option<http::Uri> {
    if !target.starts_with('/') {
        return None;
    }
    match (old.scheme(), old.authority()) {
        (Some(scheme), Some(authority)) => http::Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query(target)
            .build()
            .ok(),
        _ => target.parse().ok(),
    }
}
