// Client of the Lambda Runtime API (2018-06-01) over one keep-alive HTTP connection.
// Contract: one instance per process; at most one request in flight at a time (the
// invoke loop is sequential). A request on a kept-alive socket that the server closed
// meanwhile is retried once on a fresh socket.
'use strict';

const http = require('http');

const PREFIX = '/2018-06-01/runtime';

class RuntimeApiClient {
  // address: AWS_LAMBDA_RUNTIME_API, "host:port" or "[v6]:port".
  constructor(address) {
    const colon = address.lastIndexOf(':');
    const port = Number(address.slice(colon + 1));
    if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new Error(`bad AWS_LAMBDA_RUNTIME_API ${JSON.stringify(address)}`);
    }
    this.host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    this.port = port;
    this.agent = new http.Agent({keepAlive: true, maxSockets: 1, noDelay: true});
  }

  // Resolves to {headers, body} (body: Buffer); rejects on transport errors or non-200.
  async nextInvocation() {
    const res = await this._request('GET', `${PREFIX}/invocation/next`, undefined, {});
    if (res.status !== 200) {
      throw new Error(`GET /invocation/next answered ${res.status}: ${res.body}`);
    }
    return res;
  }

  // result: the already-serialized JSON string. Resolves to the HTTP status.
  async postInvocationResponse(id, result) {
    const res = await this._request('POST', `${PREFIX}/invocation/${encodeURIComponent(id)}/response`,
      result, {'Content-Type': 'application/json'});
    return res.status;
  }

  // response: the object from errors.toRapidResponse().
  async postInvocationError(id, response) {
    const res = await this._request('POST', `${PREFIX}/invocation/${encodeURIComponent(id)}/error`,
      JSON.stringify(response), errorHeaders(response));
    return res.status;
  }

  // errorType: the Lambda-Runtime-Function-Error-Type header (default: response.errorType).
  async postInitError(response, errorType) {
    const res = await this._request('POST', `${PREFIX}/init/error`, JSON.stringify(response),
      errorHeaders(response, errorType));
    return res.status;
  }

  // SnapStart: resolves after a restore; rejects on transport errors or non-200.
  async restoreNext() {
    const res = await this._request('GET', `${PREFIX}/restore/next`, undefined, {});
    if (res.status !== 200) throw new Error(`GET /restore/next answered ${res.status}: ${res.body}`);
    return res.headers;
  }

  // SnapStart: the error of an after-restore hook.
  async postRestoreError(response, errorType) {
    const res = await this._request('POST', `${PREFIX}/restore/error`, JSON.stringify(response),
      errorHeaders(response, errorType));
    return res.status;
  }

  async _request(method, path, body, headers) {
    try {
      return await this._once(method, path, body, headers);
    } catch (err) {
      if (!err.kilnReusedSocket) throw err;
      return this._once(method, path, body, headers);
    }
  }

  _once(method, path, body, headers) {
    return new Promise((resolve, reject) => {
      const allHeaders = Object.assign({}, headers);
      if (body !== undefined) allHeaders['Content-Length'] = Buffer.byteLength(body);
      const req = http.request(
        {agent: this.agent, host: this.host, port: this.port, method, path, headers: allHeaders},
        (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () => {
            const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
            resolve({status: res.statusCode, headers: res.headers, body: data});
          });
          res.on('error', reject);
        });
      req.on('error', (err) => {
        // ECONNRESET / "socket hang up" on a reused idle socket: safe to retry once.
        if (req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          err.kilnReusedSocket = true;
        }
        reject(err);
      });
      req.end(body);
    });
  }
}

function errorHeaders(response, errorType) {
  // A header value must be one line of visible ASCII.
  const type = String(errorType || response.errorType || '').replace(/[^\x20-\x7e]/g, '');
  return {'Content-Type': 'application/json', 'Lambda-Runtime-Function-Error-Type': type};
}

module.exports = {RuntimeApiClient};
