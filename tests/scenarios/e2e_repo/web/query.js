// Helpers for request handling.

function parseQueryString(url) {
  // Split the query part of a URL into a map of decoded keys and values.
  const out = {};
  const idx = url.indexOf("?");
  if (idx < 0) return out;
  for (const pair of url.slice(idx + 1).split("&")) {
    const [k, v = ""] = pair.split("=");
    out[decodeURIComponent(k)] = decodeURIComponent(v);
  }
  return out;
}

function retryWithBackoff(fn, attempts, delayMs) {
  // Call an async function again after a growing delay when it fails.
  return fn().catch((err) => {
    if (attempts <= 1) throw err;
    return new Promise((resolve) => setTimeout(resolve, delayMs)).then(() =>
      retryWithBackoff(fn, attempts - 1, delayMs * 2)
    );
  });
}

module.exports = { parseQueryString, retryWithBackoff };
