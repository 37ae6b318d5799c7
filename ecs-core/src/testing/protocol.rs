//! Error answers in each AWS protocol our clients speak, for test doubles that stand in for
//! the service ([`FaultInjector`](super::FaultInjector), [`Chaos`](super::Chaos)).

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// The wire protocol of a service, as far as an error answer is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// EC2's own query protocol (`<Response><Errors>`).
    Ec2,
    /// The AWS query protocol of IAM and Elastic Load Balancing (`<ErrorResponse>`).
    Query,
    /// The RPC v2 CBOR protocol of CloudWatch.
    Cbor,
    /// AWS JSON 1.1: ECS, ECR, CloudWatch Logs, Application Auto Scaling, ACM.
    Json,
}

impl Protocol {
    /// From the service name the SDK records in an operation's metadata (`EC2`, `IAM`, ...).
    pub(crate) fn from_service(service: &str) -> Self {
        match service {
            "EC2" => Self::Ec2,
            "IAM" | "Elastic Load Balancing v2" => Self::Query,
            "CloudWatch" => Self::Cbor,
            _ => Self::Json,
        }
    }

    /// From the SigV4 signing name in a request's `authorization` header (`ec2`, `iam`,
    /// `elasticloadbalancing`, `monitoring`, ...).
    pub(crate) fn from_signing_name(name: &str) -> Self {
        match name {
            "ec2" => Self::Ec2,
            "iam" | "elasticloadbalancing" => Self::Query,
            "monitoring" => Self::Cbor,
            _ => Self::Json,
        }
    }

    /// The code AWS uses for throttling in this protocol's services.
    pub(crate) fn throttling_code(self) -> &'static str {
        match self {
            Self::Ec2 => "RequestLimitExceeded",
            Self::Query => "Throttling",
            Self::Cbor | Self::Json => "ThrottlingException",
        }
    }

    /// An error answer with `status`, `code` and `message`, as the service would send it.
    pub(crate) fn error(self, status: u16, code: &str, message: &str) -> HttpResponse {
        let (content_type, body): (&str, Vec<u8>) = match self {
            Self::Ec2 => (
                "text/xml",
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>injected</RequestID></Response>").into_bytes(),
            ),
            Self::Query => (
                "text/xml",
                format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>injected</RequestId></ErrorResponse>").into_bytes(),
            ),
            Self::Cbor => ("application/cbor", cbor_error(code, message)),
            Self::Json => (
                "application/x-amz-json-1.1",
                format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}").into_bytes(),
            ),
        };
        let mut r = HttpResponse::new(
            StatusCode::try_from(status).expect("a valid status"),
            SdkBody::from(body),
        );
        r.headers_mut().insert("content-type", content_type);
        if self == Self::Cbor {
            r.headers_mut().insert("smithy-protocol", "rpc-v2-cbor");
        }
        r
    }
}

/// `{"__type": code, "message": message}` in CBOR (texts shorter than 256 bytes).
fn cbor_error(code: &str, message: &str) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, s: &str) {
        let n = s.len().min(255);
        if n < 24 {
            out.push(0x60 | n as u8);
        } else {
            out.push(0x78);
            out.push(n as u8);
        }
        out.extend_from_slice(&s.as_bytes()[..n]);
    }
    let mut out = vec![0xa2];
    text(&mut out, "__type");
    text(&mut out, code);
    text(&mut out, "message");
    text(&mut out, message);
    out
}
