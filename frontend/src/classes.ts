// The six race classes. The backend knows classes only by number (1–6); their names live here.

export interface RaceClass {
  id: number;
  name: string;
}

export const CLASSES: readonly RaceClass[] = [
  { id: 1, name: 'Sprint' },
  { id: 2, name: 'Endurance' },
  { id: 3, name: 'Hills' },
  { id: 4, name: 'Intervals' },
  { id: 5, name: 'Recovery' },
  { id: 6, name: 'Time Trial' },
];

export function className(id: number): string {
  return CLASSES.find((c) => c.id === id)?.name ?? `Class ${id}`;
}

export function isClassId(value: unknown): value is number {
  return typeof value === 'number' && CLASSES.some((c) => c.id === value);
}
