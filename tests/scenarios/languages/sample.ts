import { readFile } from "fs/promises";

export interface Settings {
  name: string;
  retries: number;
}

export enum Level {
  Debug,
  Info,
  Error,
}

export class SettingsLoader {
  private cache = new Map<string, Settings>();

  async load(path: string): Promise<Settings> {
    const hit = this.cache.get(path);
    if (hit) {
      return hit;
    }
    const parsed = JSON.parse(await readFile(path, "utf8")) as Settings;
    this.cache.set(path, parsed);
    return parsed;
  }

  clear(): void {
    this.cache.clear();
  }
}

export function describe(settings: Settings): string {
  return `${settings.name} (retries: ${settings.retries})`;
}

type Handler = (s: Settings) => void;
