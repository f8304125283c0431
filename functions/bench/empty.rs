//! The benchmark's baseline: an empty `lambda_http` function built with the same profile, so
//! `make bench` can print each function's cold-start init time as a ratio to this one.
//! Not deployed; not in template.yaml.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_req: Request| async {
        Ok::<_, Error>(Response::new(Body::Empty))
    }))
    .await
}
