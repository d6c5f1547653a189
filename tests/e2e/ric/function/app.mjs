// Handlers for the aws-lambda-ric end-to-end test. Plain ES module, no imports:
// everything the RIC needs comes from node_modules/aws-lambda-ric.

// Echoes the event and what the RIC put in the context, so the test can check that
// Kiln's Runtime API headers and environment reached the handler.
export const handler = async (event, context) => {
  if (event?.log) console.log(`ric handler log ${context.awsRequestId}`);
  return echo(event, context);
};

const echo = (event, context) => ({
  event,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  memoryLimitInMB: context.memoryLimitInMB,
  invokedFunctionArn: context.invokedFunctionArn,
  requestId: context.awsRequestId,
  remainingMs: context.getRemainingTimeInMillis(),
  pid: process.pid,
});

class KilnTestError extends Error {
  constructor(message) {
    super(message);
    this.name = "KilnTestError";
  }
}

// Throws: the RIC reports it through /runtime/invocation/{id}/error.
export const fails = async (event) => {
  throw new KilnTestError(`deliberate failure: ${event?.why ?? "no reason"}`);
};
