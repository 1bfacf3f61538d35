//! Compressing answers as gptme-server does (flask-compress): bodies of 500 bytes or more, in
//! the best encoding the client takes. Not the forwarded routes: the upstream compresses those
//! itself.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tower::{Layer, ServiceExt};
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

use super::{blocking, json_error};

/// The compression layer of the routes convmeta answers itself.
pub(super) fn layer() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().compress_when(DefaultPredicate::new().and(SizeAbove::new(500)))
}

/// The largest body compressed on the async threads, as it is sent (the default list: about 50
/// KB, 1 to 3 ms). A larger one (the web UI's History page, 1,000 items: about 1 MB, 40 ms with
/// gzip; a SQL answer of up to 32 MiB, 2.2 s) would hold one of them as long, and two at once
/// would stall every other request (the list, `/healthz`).
const ON_THE_ASYNC_THREADS_AT_MOST: u64 = 64 << 10;

/// Middleware, inside [`layer`]: compresses a large answer whole on a blocking thread, with
/// the same layer, so that the encoding, and every header, is what that layer would have made.
/// The outer layer then leaves it alone, as it does any body that has an encoding.
pub(super) async fn large_answers_off_the_async_threads(request: Request, next: Next) -> Response {
    // All the layer reads of a request.
    let mut asked = Request::new(Body::empty());
    for value in request.headers().get_all(header::ACCEPT_ENCODING) {
        asked.headers_mut().append(header::ACCEPT_ENCODING, value.clone());
    }
    let response = next.run(request).await;
    let size = axum::body::HttpBody::size_hint(response.body()).exact();
    if size.is_none_or(|size| size <= ON_THE_ASYNC_THREADS_AT_MOST) {
        return response;
    }
    let compressed = blocking(move || {
        tokio::runtime::Handle::current().block_on(async move {
            // Called once, by `oneshot`.
            let mut response = Some(response);
            let answer = tower::service_fn(move |_: Request| {
                std::future::ready(Ok::<_, Infallible>(response.take().unwrap_or_default()))
            });
            let Ok(response) = layer().layer(answer).oneshot(asked).await;
            let (parts, body) = response.into_parts();
            // The body is in memory: reading it fails only if compressing does.
            let body = axum::body::to_bytes(Body::new(body), usize::MAX)
                .await
                .map_err(|e| crate::error::Error::Refresh(format!("compressing the answer failed: {e}")))?;
            Ok(Response::from_parts(parts, Body::from(body)))
        })
    })
    .await;
    compressed.unwrap_or_else(|e| json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()))
}
