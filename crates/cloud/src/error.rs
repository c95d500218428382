//! Domain errors of the cloud layer. `aws_sdk_*::SdkError` never leaves this crate: the AWS
//! adapter maps every failure to a [`CloudError`] that keeps the AWS error code, message and
//! request id for logs and status conditions.

use std::fmt;

/// What kind of failure, which decides what the controller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The resource does not exist (any more).
    NotFound,
    /// AWS throttled the call; back off and retry.
    Throttled,
    /// 5xx, timeouts, connection failures; retry with back-off.
    Transient,
    /// AWS refused the request as invalid; retrying the same request will not help.
    InvalidRequest,
    /// The request conflicts with existing state (token reused with other parameters, a
    /// duplicate name).
    Conflict,
    /// A resource is still in use (a security group held by network interfaces, a file
    /// system busy with another data repository task).
    DependencyViolation,
    /// A service quota was reached.
    LimitExceeded,
    /// The operator's IAM identity may not do this.
    AccessDenied,
}

impl ErrorKind {
    /// Bounded label for metrics and Event reasons.
    pub fn category(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Throttled => "throttled",
            Self::Transient => "transient",
            Self::InvalidRequest => "invalid_request",
            Self::Conflict => "conflict",
            Self::DependencyViolation => "dependency_violation",
            Self::LimitExceeded => "limit_exceeded",
            Self::AccessDenied => "access_denied",
        }
    }

    /// Whether the same call may succeed later without any change.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Transient | Self::DependencyViolation
        )
    }
}

/// A failed cloud call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The AWS operation, e.g. `CreateFileSystem`.
    pub operation: &'static str,
    /// The AWS error code, e.g. `InvalidNetworkSettings`, when AWS sent one.
    pub code: Option<String>,
    /// AWS's message (verbatim), or a description of the transport failure.
    pub message: String,
    /// The AWS request id, for support cases and log correlation.
    pub request_id: Option<String>,
}

impl CloudError {
    /// A new error without AWS metadata.
    pub fn new(kind: ErrorKind, operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            operation,
            code: None,
            message: message.into(),
            request_id: None,
        }
    }

    /// Bounded label for metrics and Event reasons.
    pub fn category(&self) -> &'static str {
        self.kind.category()
    }

    /// Whether retrying is pointless until the request changes (the workspace's spec or
    /// class): AWS called it invalid. `InvalidNetworkSettings` is the exception, since it names
    /// a security group or subnet that can be fixed outside Kubernetes. A denied action or a
    /// reached quota is fixed outside Kubernetes too (IAM, Service Quotas): those retry, with
    /// a growing back-off.
    pub fn waits_for_change(&self) -> bool {
        self.kind == ErrorKind::InvalidRequest && !self.has_code("InvalidNetworkSettings")
    }

    /// Whether the AWS error code is `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.operation)?;
        if let Some(code) = &self.code {
            write!(f, " failed with {code}")?;
        } else {
            write!(f, " failed")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for CloudError {}

impl CloudError {
    /// The error as tenants may read it (workspace status, Events): AWS's words with every
    /// ARN and account id left out (an AccessDenied names the operator's role, account and
    /// resource). The operator's log keeps the full text; the request id ties the two.
    pub fn for_tenants(&self) -> String {
        let full = CloudError {
            message: redact(&self.message),
            ..self.clone()
        };
        full.to_string()
    }
}

/// `text` with ARNs replaced by `<arn>` and 12-digit account ids by `<account>`.
pub fn redact(text: &str) -> String {
    let ends_arn =
        |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '(' | ')' | '[' | ']');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let at_word = out
            .chars()
            .last()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if at_word && rest.starts_with("arn:") {
            let end = rest.find(ends_arn).unwrap_or(rest.len());
            out.push_str("<arn>");
            rest = &rest[end..];
            continue;
        }
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if at_word && digits > 0 {
            let after = rest[digits..].chars().next();
            if digits == 12 && after.is_none_or(|c| !c.is_ascii_alphanumeric()) {
                out.push_str("<account>");
            } else {
                out.push_str(&rest[..digits]);
            }
            rest = &rest[digits..];
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod redaction {
    use super::*;

    #[test]
    fn arns_and_account_ids_are_left_out() {
        let e = CloudError {
            kind: ErrorKind::AccessDenied,
            operation: "CreateFileSystem",
            code: Some("AccessDeniedException".into()),
            message: "User: arn:aws:sts::123456789012:assumed-role/lustre-operator/i-0abc is not authorized to perform: fsx:CreateFileSystem on resource: arn:aws:fsx:us-east-1:123456789012:file-system/* because no identity-based policy allows the fsx:CreateFileSystem action (account 123456789012, size 1200, id 1234567890123)".into(),
            request_id: Some("req-1".into()),
        };
        assert_eq!(
            e.for_tenants(),
            "CreateFileSystem failed with AccessDeniedException: User: <arn> is not authorized to perform: fsx:CreateFileSystem on resource: <arn> because no identity-based policy allows the fsx:CreateFileSystem action (account <account>, size 1200, id 1234567890123) (request id req-1)"
        );
        assert_eq!(
            redact("fs-0123456789abcdef0 is FAILED"),
            "fs-0123456789abcdef0 is FAILED"
        );
    }
}

/// Result of a cloud call.
pub type CloudResult<T> = Result<T, CloudError>;

/// Classifies an AWS error code (FSx or EC2) into a kind; `None` for codes the caller must
/// classify by HTTP status.
pub fn classify_code(code: &str) -> Option<ErrorKind> {
    use ErrorKind::*;
    let kind = match code {
        "FileSystemNotFound"
        | "DataRepositoryAssociationNotFound"
        | "DataRepositoryTaskNotFound"
        | "BackupNotFound"
        | "ResourceNotFound"
        | "InvalidGroup.NotFound"
        | "InvalidSubnetID.NotFound"
        | "InvalidSubnet.NotFound"
        | "InvalidVpcID.NotFound" => NotFound,
        "ThrottlingException"
        | "Throttling"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "SlowDown" => Throttled,
        "InternalServerError"
        | "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "Unavailable"
        | "ServiceUnavailableException" => Transient,
        "IncompatibleParameterError"
        | "InvalidGroup.Duplicate"
        | "IdempotentParameterMismatch"
        | "DataRepositoryTaskEnded" => Conflict,
        "DependencyViolation"
        | "InvalidGroup.InUse"
        | "DataRepositoryTaskExecuting"
        | "BackupInProgress"
        | "BackupRestoring"
        | "BackupBeingCopied" => DependencyViolation,
        "ServiceLimitExceeded"
        | "SecurityGroupLimitExceeded"
        | "RulesPerSecurityGroupLimitExceeded"
        | "ResourceLimitExceeded" => LimitExceeded,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthFailure"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId" => AccessDenied,
        "BadRequest"
        | "InvalidNetworkSettings"
        | "InvalidPerUnitStorageThroughput"
        | "MissingFileSystemConfiguration"
        | "InvalidImportPath"
        | "InvalidExportPath"
        | "UnsupportedOperation"
        | "InvalidDataRepositoryType"
        | "InvalidParameterValue"
        | "InvalidParameterCombination"
        | "InvalidParameter"
        | "MissingParameter"
        | "ValidationException"
        | "InvalidPermission.Malformed"
        | "InvalidGroupId.Malformed" => InvalidRequest,
        _ => return None,
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_keeps_code_message_and_request_id() {
        let e = CloudError {
            kind: ErrorKind::InvalidRequest,
            operation: "CreateFileSystem",
            code: Some("InvalidNetworkSettings".into()),
            message: "Security group sg-1 does not exist".into(),
            request_id: Some("req-1".into()),
        };
        assert_eq!(
            e.to_string(),
            "CreateFileSystem failed with InvalidNetworkSettings: Security group sg-1 does not exist (request id req-1)"
        );
        assert_eq!(e.category(), "invalid_request");
    }

    #[test]
    fn retryable_kinds() {
        assert!(ErrorKind::Throttled.is_retryable());
        assert!(ErrorKind::DependencyViolation.is_retryable());
        assert!(!ErrorKind::InvalidRequest.is_retryable());
        assert_eq!(
            classify_code("RequestLimitExceeded"),
            Some(ErrorKind::Throttled)
        );
        assert_eq!(classify_code("SomethingNew"), None);
    }
}
