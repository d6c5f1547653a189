// Loads the function's handler from _HANDLER ("dir/file.export.nested"), as Lambda's
// Node.js runtime does: the module is the part after the last "/" up to the first ".";
// it is tried as <file> (CommonJS), <file>.js (CommonJS, or ESM when the nearest
// package.json says "type": "module"), <file>.mjs (ESM), <file>.cjs, then resolved as a
// node module from the task root. Throws the Runtime.* errors of errors.js.
'use strict';

const fs = require('fs');
const path = require('path');
const url = require('url');
const {
  HandlerNotFound, ImportModuleError, MalformedHandlerName, UserCodeSyntaxError,
} = require('./errors.js');

const FUNCTION_EXPR = /^([^.]*)\.(.*)$/;

function splitHandlerString(handler) {
  const match = handler.match(FUNCTION_EXPR);
  if (!match || match.length !== 3) throw new MalformedHandlerName('Bad handler');
  return [match[1], match[2]];
}

function resolveHandler(object, nestedProperty) {
  return nestedProperty.split('.').reduce((nested, key) => (nested ? nested[key] : undefined), object);
}

function tryRequireFile(file, extension) {
  const p = file + (extension || '');
  return fs.existsSync(p) ? require(p) : undefined;
}

async function tryAwaitImport(file, extension) {
  const p = file + (extension || '');
  return fs.existsSync(p) ? await import(url.pathToFileURL(p).href) : undefined;
}

function folderHasTypeModule(folder) {
  for (;;) {
    if (folder.endsWith('/node_modules')) return false;
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8')).type === 'module';
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    const parent = path.dirname(folder);
    if (parent === folder) return false;
    folder = parent;
  }
}

function hasPackageJsonTypeModule(file) {
  const js = file + '.js';
  return fs.existsSync(js) ? folderHasTypeModule(path.dirname(path.resolve(js))) : false;
}

async function tryLoad(appRoot, moduleRoot, module) {
  const lambdaStylePath = path.resolve(appRoot, moduleRoot, module);
  const extensionless = tryRequireFile(lambdaStylePath);
  if (extensionless) return extensionless;
  const typeModule = hasPackageJsonTypeModule(lambdaStylePath);
  if (!typeModule) {
    const loaded = tryRequireFile(lambdaStylePath, '.js');
    if (loaded) return loaded;
  }
  const loaded =
    (typeModule && (await tryAwaitImport(lambdaStylePath, '.js'))) ||
    (await tryAwaitImport(lambdaStylePath, '.mjs')) ||
    tryRequireFile(lambdaStylePath, '.cjs');
  if (loaded) return loaded;
  // Not a file of the task: resolve it as a package, relative to the task root.
  const nodeStylePath = require.resolve(module, {paths: [appRoot, path.resolve(appRoot, moduleRoot)]});
  return require(nodeStylePath);
}

async function loadUserModule(appRoot, moduleRoot, module) {
  try {
    return await tryLoad(appRoot, moduleRoot, module);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
}

// Resolves to the handler function; rejects with the error to report as init error.
async function load(appRoot, fullHandlerString) {
  if (fullHandlerString.includes('..')) {
    throw new MalformedHandlerName("'..' is not allowed in handler name.");
  }
  const handlerString = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString));
  const [module, handlerPath] = splitHandlerString(handlerString);
  const userModule = await loadUserModule(appRoot, moduleRoot, module);
  const handler = resolveHandler(userModule, handlerPath);
  if (handler === undefined || handler === null) {
    throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  }
  if (typeof handler !== 'function') {
    throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  }
  return handler;
}

module.exports = {load};
