import { withoutEchoedInput } from '../../src/graphql/input-guard';

describe('withoutEchoedInput (the error boundary never prints a client value)', () => {
  it.each([
    ['Variable "$input" got invalid value { nam: "SECRET" }; Field "nam" is not defined by type "X". Did you mean "name"?', 'Variable "$input" got invalid value.'],
    ['Variable "$n" got invalid value "SECRET"; Int cannot represent non-integer value: "SECRET"', 'Variable "$n" got invalid value.'],
    ['Expected value of type "Int!", found "SECRET".', 'Expected value of type "Int!".'],
    ['Expected value of type "X", found { a: "SECRET" }; X cannot represent: SECRET', 'Expected value of type "X".'],
    ['Argument "id" has invalid value "SECRET".', 'Argument "id" has invalid value.'],
    ['Int cannot represent non-integer value: "SECRET"', 'Int cannot represent non-integer value.'],
    ['DateTime cannot represent an invalid date-time-string SECRET.', 'DateTime cannot represent the given value.'],
    ['Value "SECRET" does not exist in "Tier" enum. Did you mean the enum value "STAGE"?', 'Value does not exist in "Tier" enum.'],
    ['Field "nam" is not defined by type "X". [Suggestion hidden]?', 'Field "nam" is not defined by type "X".'],
  ])('%s', (message, expected) => {
    expect(withoutEchoedInput(message)).toBe(expected);
  });

  it("keeps the input guard's own messages whole", () => {
    const own = 'Variable "$input" got invalid value at "input.resources.ramMb"; Expected type "Int".';
    expect(withoutEchoedInput(own)).toBe(own);
    expect(withoutEchoedInput('Variable "$w" got invalid value; Expected type "ID".')).toBe('Variable "$w" got invalid value; Expected type "ID".');
  });
});
