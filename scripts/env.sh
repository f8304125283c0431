# Sourced by the scripts: the AWS SDK's view of the local stack (loopback only, dummy credentials).
# MB_DYNAMODB_PORT / MB_MOTO_PORT choose the emulator ports.
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:${MB_DYNAMODB_PORT:-8000}"
export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:${MB_MOTO_PORT:-5000}"
export AWS_ENDPOINT_URL_SES="http://127.0.0.1:${MB_MOTO_PORT:-5000}"
export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:${MB_MOTO_PORT:-5000}"
