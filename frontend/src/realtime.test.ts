import { describe, expect, it } from 'vitest';
import { parseRealtime, rawResultTexts } from './realtime';

describe('realtime messages', () => {
  it('parses the publisher\u2019s message and keeps each output\u2019s text', () => {
    const payload = '{"msg":"results","classId":3,"raceId":5400172,"ts":1620051629000,"results":{"8":151.2,"12":150.0,"3":1.5e2,"4":98.7654}}';
    const parsed = parseRealtime(payload);
    expect(parsed).not.toBeNull();
    expect(parsed!.message).toEqual({
      msg: 'results',
      classId: 3,
      raceId: 5400172,
      ts: 1620051629000,
      results: { '8': 151.2, '12': 150, '3': 150, '4': 98.7654 },
    });
    expect(Object.fromEntries(parsed!.rawOutputs)).toEqual({ '8': '151.2', '12': '150.0', '3': '1.5e2', '4': '98.7654' });
  });

  it('falls back to the parsed number when the text cannot be found', () => {
    expect(rawResultTexts('{"results":{"8" : 1.25 }}')).toEqual(new Map([['8', '1.25']]));
    const parsed = parseRealtime('{"msg":"results","classId":1,"raceId":2,"ts":3,"results":{"8":1.25}}');
    expect(parsed!.rawOutputs.get('8')).toBe('1.25');
  });

  it('ignores other and malformed messages', () => {
    expect(parseRealtime('not json')).toBeNull();
    expect(parseRealtime('{"msg":"other","classId":1,"raceId":2,"results":{}}')).toBeNull();
    expect(parseRealtime('{"msg":"results","classId":"1","raceId":2,"results":{}}')).toBeNull();
    expect(parseRealtime('{"msg":"results","classId":1,"raceId":2,"results":[]}')).toBeNull();
    expect(parseRealtime('[]')).toBeNull();
  });
});
