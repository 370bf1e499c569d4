//! A route's own answers before anything is forwarded (SPEC §8): access lists, the rate limit
//! and redirects.

use super::request::{client_ip, route_target};
use super::{Ctx, Switchyard, respond};
use crate::config::Respond;
use crate::policy::{self, Rejection, RouteState};
use pingora::ErrorType;
use pingora::prelude::*;
use pingora::proxy::Session;
use std::time::Instant;

impl Switchyard {
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
        let client = client_ip(session);
        if let Some(access) = &p.access
            && !client.is_some_and(|ip| access.permits(ip))
        {
            ctx.reject(Rejection::Denied);
            let ctx = &*ctx;
            respond::send_error(session, 403, true, |r| ctx.decorate(r)).await?;
            return Ok(true);
        }
        if let (Some(limit), Some(limiter)) = (&p.rate_limit, &route.limiter)
            && let Some(key) = policy::rate_key(&limit.key, session.req_header(), client)
            && let Err(wait) = limiter.check(&key, Instant::now())
        {
            ctx.reject(Rejection::RateLimited);
            let secs = policy::retry_after_secs(wait);
            let ctx = &*ctx;
            respond::send_error(session, 429, true, |r| {
                r.insert_header(http::header::RETRY_AFTER, secs)?;
                ctx.decorate(r)
            })
            .await?;
            return Ok(true);
        }
        if let Some(answer) = &p.respond {
            if answer.status == Respond::CLOSE {
                ctx.closed_unanswered = true;
                return Error::e_explain(ErrorType::HTTPStatus(Respond::CLOSE), "respond 444");
            }
            let ctx = &*ctx;
            respond::send_answer(session, answer.status, &answer.headers, &answer.body, |r| {
                ctx.decorate(r)
            })
            .await?;
            return Ok(true);
        }
        if let Some(redirect) = &p.redirect {
            let req = session.req_header();
            let (host, _) = route_target(req);
            let uri = req
                .uri
                .path_and_query()
                .map_or_else(|| req.uri.path(), |pq| pq.as_str());
            let location = policy::redirect_location(&redirect.to, host, uri);
            let ctx = &*ctx;
            respond::send_error(session, redirect.status, true, |r| {
                r.insert_header(http::header::LOCATION, location)?;
                ctx.decorate(r)
            })
            .await?;
            return Ok(true);
        }
        Ok(false)
    }
}
