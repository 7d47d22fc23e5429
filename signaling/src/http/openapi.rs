//! The OpenAPI document's frame: info, tags and the API-key security scheme. The paths and
//! schemas come from the handlers' `#[utoipa::path]` annotations.

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

/// The root of the generated document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "supernode partner API",
        description = "Partners create anonymous accounts and short-lived login credentials. \
                       Every error is `{ \"error\": { \"code\", \"message\" } }`.",
        version = "1"
    ),
    tags(
        (name = "accounts", description = "Anonymous accounts of a partner"),
        (name = "credentials", description = "Login credentials for the WebSocket")
    ),
    modifiers(&ApiKeyScheme)
)]
pub struct ApiDoc;

/// Adds the `api_key` bearer scheme.
pub struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
