//! The bundle's own face and contract: the usage portal page (HTML, script and styles embedded
//! in the binary, so `sam build` ships them), the short-lived portal tokens a platform's backend
//! mints for one user, and the OpenAPI document of every route.

pub mod openapi;
pub mod page;
pub mod tokens;
