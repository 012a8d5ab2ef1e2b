// @ts-check
// A small store: named values and the functions that follow them. The page's modules share
// state through one store (page.js) instead of through attributes on the body, a
// MutationObserver and polling: whoever changes a value sets it, whoever cares subscribes.
// Pure (no DOM): node-testable.

/**
 * @template {Record<string, any>} T
 */
export class Store {
  /**
   * @param {T} initial the keys and their first values
   * @param {(error: unknown) => void} [onError] what to do with a listener's error (default:
   *   report it as uncaught, after the other listeners, where the page's error handler shows it)
   */
  constructor(initial, onError = uncaught) {
    /** @type {T} */
    this.values = { ...initial };
    /** @type {Map<keyof T, Set<(value: any, old: any) => void>>} */
    this.listeners = new Map();
    this.onError = onError;
  }

  /**
   * @template {keyof T} K
   * @param {K} key
   * @returns {T[K]}
   */
  get(key) {
    return this.values[key];
  }

  /**
   * Change a value and tell its listeners; setting the value it already has tells no one.
   * @template {keyof T} K
   * @param {K} key
   * @param {T[K]} value
   */
  set(key, value) {
    const old = this.values[key];
    if (Object.is(old, value)) return;
    this.values[key] = value;
    this.emit(key, old);
  }

  /**
   * Set a value from its current one.
   * @template {keyof T} K
   * @param {K} key
   * @param {(value: T[K]) => T[K]} fn
   */
  update(key, fn) {
    this.set(key, fn(this.values[key]));
  }

  /**
   * Call fn(value, old) after every change of key; returns the function that unsubscribes.
   * @template {keyof T} K
   * @param {K} key
   * @param {(value: T[K], old: T[K]) => void} fn
   * @returns {() => void}
   */
  on(key, fn) {
    if (!this.listeners.has(key)) this.listeners.set(key, new Set());
    const set = this.listeners.get(key);
    set.add(fn);
    return () => { set.delete(fn); };
  }

  /**
   * Tell key's listeners its current value (set() calls this; call it to repeat a value).
   * A listener that throws does not keep the others from hearing (see onError).
   * @template {keyof T} K
   * @param {K} key
   * @param {T[K]} [old] the value before the change (default: the current one)
   */
  emit(key, old = this.values[key]) {
    const value = this.values[key];
    for (const fn of [...(this.listeners.get(key) || [])]) {
      try {
        fn(value, old);
      } catch (e) {
        this.onError(e);
      }
    }
  }

  /**
   * A promise of key's value once test(value) holds (at once when it already does).
   * @template {keyof T} K
   * @param {K} key
   * @param {(value: T[K]) => boolean} [test] default: the value is truthy
   * @returns {Promise<T[K]>}
   */
  when(key, test = Boolean) {
    if (test(this.values[key])) return Promise.resolve(this.values[key]);
    return new Promise((resolve) => {
      const off = this.on(key, (value) => {
        if (!test(value)) return;
        off();
        resolve(value);
      });
    });
  }
}

/** @param {unknown} error */
function uncaught(error) {
  queueMicrotask(() => { throw error; });
}

/**
 * Write the store's keys into an element's dataset (data-KEY attributes) and keep them
 * written, for what reads attributes rather than the store: CSS and the browser tests.
 * A null or undefined value removes the attribute. Returns the function that stops it.
 * @template {Record<string, any>} T
 * @param {Store<T>} store
 * @param {(keyof T & string)[]} keys
 * @param {Record<string, string>} dataset an element's dataset (or any object, in tests)
 * @returns {() => void}
 */
export function mirror(store, keys, dataset) {
  const write = (key, value) => {
    if (value === null || value === undefined) delete dataset[key];
    else dataset[key] = String(value);
  };
  const offs = keys.map((key) => {
    write(key, store.get(key));
    return store.on(key, (value) => write(key, value));
  });
  return () => offs.forEach((off) => off());
}
