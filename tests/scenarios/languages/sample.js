// Small event emitter used by the dashboard widgets.
const DEFAULT_MAX = 10;

class Emitter {
  constructor(max = DEFAULT_MAX) {
    this.listeners = new Map();
    this.max = max;
  }

  on(event, fn) {
    const list = this.listeners.get(event) || [];
    if (list.length >= this.max) {
      throw new Error(`too many listeners for ${event}`);
    }
    list.push(fn);
    this.listeners.set(event, list);
  }

  emit(event, ...args) {
    for (const fn of this.listeners.get(event) || []) {
      fn(...args);
    }
  }
}

const debounce = (fn, wait) => {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
};

export function createEmitter(max) {
  return new Emitter(max);
}

module.exports = { Emitter, debounce };
