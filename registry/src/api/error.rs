//! The registry's wire errors, from one table.
//!
//! [`Kind::info`] is the only place that says which spec code, HTTP status and message an error
//! has; `IntoResponse` writes the spec's `{"errors":[…]}` envelope from it. Several kinds share a
//! spec code where the spec's fourteen codes have no closer match (e.g. a chunk out of order is
//! `BLOB_UPLOAD_INVALID` with 416). Internal failures are logged once, with the storage path, and
//! sent as `500` with distribution's `UNKNOWN` code and no detail; a full disk is `507
//! Insufficient Storage`, so clients and operators can tell it from a bug. Past an upload or
//! download limit the answer is `429 TOOMANYREQUESTS` with `Retry-After`.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::service::ServiceError;

/// `Retry-After` of a `429`: slots are held for seconds at most by well-behaved clients.
const RETRY_AFTER_SECS: &str = "2";

/// Every error the API sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// code-1
    BlobUnknown,
    /// code-2: the upload request itself is malformed.
    BlobUploadInvalid,
    /// code-3
    BlobUploadUnknown,
    /// code-4
    DigestInvalid,
    /// code-5
    ManifestBlobUnknown,
    /// code-6
    ManifestInvalid,
    /// code-7
    ManifestUnknown,
    /// code-8
    NameInvalid,
    /// code-9
    NameUnknown,
    /// code-10
    SizeInvalid,
    /// code-13
    Unsupported,
    /// A chunk out of order or disagreeing with its `Content-Range`.
    RangeInvalid,
    /// A blob `Range` outside the blob.
    RangeNotSatisfiable,
    /// Manifest over the size limit.
    ManifestTooLarge,
    /// A tag not matching the tag grammar.
    TagInvalid,
    /// `n` not a number.
    PaginationInvalid,
    /// Writes refused in read-only mode.
    ReadOnly,
    /// Deletes refused because deletion is disabled.
    DeleteDisabled,
    /// Method not defined for this endpoint.
    MethodNotAllowed,
    /// No endpoint at this path.
    RouteUnknown,
    /// Every upload or download slot is taken (429 with `Retry-After`).
    Busy,
    /// An upload's body sent nothing for the body timeout.
    BodyTimeout,
    /// The storage is full (`ENOSPC`, `EDQUOT`): 507, distribution's `UNKNOWN` code.
    InsufficientStorage,
    /// A bug or an I/O failure; details (with the storage path) are logged, not sent.
    Internal,
}

impl Kind {
    /// Spec code, HTTP status and default message.
    #[must_use]
    pub const fn info(self) -> (&'static str, StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::BlobUnknown => ("BLOB_UNKNOWN", S::NOT_FOUND, "blob unknown to registry"),
            Self::BlobUploadInvalid => {
                ("BLOB_UPLOAD_INVALID", S::BAD_REQUEST, "blob upload invalid")
            }
            Self::BlobUploadUnknown => (
                "BLOB_UPLOAD_UNKNOWN",
                S::NOT_FOUND,
                "blob upload unknown to registry",
            ),
            Self::DigestInvalid => (
                "DIGEST_INVALID",
                S::BAD_REQUEST,
                "provided digest did not match uploaded content",
            ),
            Self::ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                S::BAD_REQUEST,
                "manifest references a manifest or blob unknown to registry",
            ),
            Self::ManifestInvalid => ("MANIFEST_INVALID", S::BAD_REQUEST, "manifest invalid"),
            Self::ManifestUnknown => (
                "MANIFEST_UNKNOWN",
                S::NOT_FOUND,
                "manifest unknown to registry",
            ),
            Self::NameInvalid => ("NAME_INVALID", S::BAD_REQUEST, "invalid repository name"),
            Self::NameUnknown => (
                "NAME_UNKNOWN",
                S::NOT_FOUND,
                "repository name not known to registry",
            ),
            Self::SizeInvalid => (
                "SIZE_INVALID",
                S::BAD_REQUEST,
                "provided length did not match content length",
            ),
            Self::Unsupported => (
                "UNSUPPORTED",
                S::METHOD_NOT_ALLOWED,
                "the operation is unsupported",
            ),
            Self::RangeInvalid => (
                "BLOB_UPLOAD_INVALID",
                S::RANGE_NOT_SATISFIABLE,
                "chunk out of order",
            ),
            Self::RangeNotSatisfiable => (
                "SIZE_INVALID",
                S::RANGE_NOT_SATISFIABLE,
                "requested range not satisfiable",
            ),
            Self::ManifestTooLarge => (
                "MANIFEST_INVALID",
                S::PAYLOAD_TOO_LARGE,
                "manifest too large",
            ),
            Self::TagInvalid => ("MANIFEST_INVALID", S::BAD_REQUEST, "invalid tag"),
            Self::PaginationInvalid => (
                "UNSUPPORTED",
                S::BAD_REQUEST,
                "invalid pagination parameter",
            ),
            Self::ReadOnly => (
                "UNSUPPORTED",
                S::METHOD_NOT_ALLOWED,
                "registry is in read-only mode",
            ),
            Self::DeleteDisabled => (
                "UNSUPPORTED",
                S::METHOD_NOT_ALLOWED,
                "deletion is disabled on this registry",
            ),
            Self::MethodNotAllowed => (
                "UNSUPPORTED",
                S::METHOD_NOT_ALLOWED,
                "method not allowed on this endpoint",
            ),
            Self::RouteUnknown => ("UNSUPPORTED", S::NOT_FOUND, "no such endpoint"),
            Self::Busy => ("TOOMANYREQUESTS", S::TOO_MANY_REQUESTS, "too many requests"),
            Self::BodyTimeout => (
                "BLOB_UPLOAD_INVALID",
                S::REQUEST_TIMEOUT,
                "request body timed out",
            ),
            Self::InsufficientStorage => (
                "UNKNOWN",
                S::INSUFFICIENT_STORAGE,
                "insufficient storage: the registry's disk is full",
            ),
            Self::Internal => ("UNKNOWN", S::INTERNAL_SERVER_ERROR, "internal error"),
        }
    }
}

/// An error response: a table entry, an optional specific message, extra headers.
#[derive(Debug)]
pub struct ApiError {
    /// Which table entry.
    pub kind: Kind,
    /// Specific message appended to the table's (what was wrong and what to do).
    pub detail: Option<String>,
    /// Headers the endpoint adds (e.g. `Range` on a 416).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a specific message.
    #[must_use]
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: Some(detail.into()),
            headers: Vec::new(),
        }
    }

    /// An error with the table's message only.
    #[must_use]
    pub fn bare(kind: Kind) -> Self {
        Self {
            kind,
            detail: None,
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status, message) = self.kind.info();
        let message = match &self.detail {
            Some(d) => format!("{message}: {d}"),
            None => message.to_owned(),
        };
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
        let mut resp = (
            status,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response();
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let kind = match &e {
            ServiceError::BlobUnknown { .. } => Kind::BlobUnknown,
            ServiceError::UploadUnknown { .. } => Kind::BlobUploadUnknown,
            ServiceError::RangeInvalid { size, .. } => {
                let end = size.saturating_sub(1);
                return ApiError::new(Kind::RangeInvalid, e.to_string())
                    .with_header(axum::http::header::RANGE, &format!("0-{end}"));
            }
            ServiceError::SizeInvalid { .. } => Kind::SizeInvalid,
            ServiceError::DigestInvalid { .. } => Kind::DigestInvalid,
            ServiceError::BodyInterrupted { .. } => Kind::BlobUploadInvalid,
            ServiceError::ManifestInvalid { .. } => Kind::ManifestInvalid,
            ServiceError::ManifestTooLarge { .. } => Kind::ManifestTooLarge,
            ServiceError::ManifestBlobUnknown { .. } => Kind::ManifestBlobUnknown,
            ServiceError::ManifestUnknown { .. } | ServiceError::ManifestNotAcceptable { .. } => {
                Kind::ManifestUnknown
            }
            ServiceError::NameUnknown { .. } => Kind::NameUnknown,
            ServiceError::TagInvalid { .. } => Kind::TagInvalid,
            ServiceError::BodyTimeout { .. } => Kind::BodyTimeout,
            ServiceError::Busy { .. } => {
                return ApiError::new(Kind::Busy, e.to_string())
                    .with_header(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECS);
            }
            ServiceError::Storage(s) if s.is_storage_full() => {
                tracing::error!(error = %DisplayChain(&e), "storage full");
                return ApiError::new(
                    Kind::InsufficientStorage,
                    "free space on the registry, then resume the upload from its `Range`",
                );
            }
            ServiceError::Storage(_) | ServiceError::Task(_) => {
                tracing::error!(error = %DisplayChain(&e), "internal error");
                return ApiError::new(
                    Kind::Internal,
                    "the registry could not read or write its storage; details are in its log",
                );
            }
        };
        ApiError::new(kind, e.to_string())
    }
}

/// Formats an error with its whole `source()` chain.
pub struct DisplayChain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut src = self.0.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}
