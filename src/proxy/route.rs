//! A route's own answers before anything is forwarded (SPEC §8): access lists, the rate limit
//! and redirects.

use super::request::{client_ip, facts};
use super::{Ctx, Switchyard, respond};
use crate::config::Respond;
use crate::policy::{self, Rejection, RouteState};
use crate::vars;
use bytes::Bytes;
use http::HeaderValue;
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
