//! Maps `SdkError` to [`CloudError`]: the AWS error code decides the kind where there is one,
//! the HTTP status where there is not; transport failures are transient.

use aws_sdk_fsx::error::DisplayErrorContext;
use aws_sdk_fsx::operation::RequestId;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{CloudError, CloudResult, ErrorKind, classify_code};

/// The one object a successful answer must carry, converted; an answer without it is a
/// transient fault (the call may be asked again).
pub(crate) fn carried<T: ?Sized, U>(
    operation: &'static str,
    what: &str,
    found: Option<&T>,
    convert: impl FnOnce(&T) -> U,
) -> CloudResult<U> {
    found.map(convert).ok_or_else(|| {
        CloudError::new(
            ErrorKind::Transient,
            operation,
            format!("response had no {what}"),
        )
    })
}

/// The domain error for a failed SDK call.
pub(crate) fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err.request_id().map(str::to_string);
    let (kind, code, message) = match &err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().map(str::to_string);
            let message = ctx.err().message().unwrap_or_default().to_string();
            let status = ctx.raw().status().as_u16();
            let kind = code
                .as_deref()
                .and_then(classify_code)
                .unwrap_or(match status {
                    429 => ErrorKind::Throttled,
                    403 => ErrorKind::AccessDenied,
                    404 => ErrorKind::NotFound,
                    500.. => ErrorKind::Transient,
                    _ => ErrorKind::InvalidRequest,
                });
            (kind, code, message)
        }
        SdkError::TimeoutError(_) => (ErrorKind::Transient, None, "timed out".to_string()),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (
            ErrorKind::Transient,
            None,
            DisplayErrorContext(&err).to_string(),
        ),
        SdkError::ConstructionFailure(_) => (
            ErrorKind::InvalidRequest,
            None,
            DisplayErrorContext(&err).to_string(),
        ),
        _ => (
            ErrorKind::Transient,
            None,
            DisplayErrorContext(&err).to_string(),
        ),
    };
    CloudError {
        kind,
        operation,
        code,
        message,
        request_id,
    }
}
