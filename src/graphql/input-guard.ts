import type { ApolloServerPlugin } from '@apollo/server';
import {
  coerceInputValue,
  type DocumentNode,
  getNamedType,
  getNullableType,
  GraphQLError,
  type GraphQLInputType,
  type GraphQLSchema,
  isInputObjectType,
  isInputType,
  isListType,
  isNonNullType,
  type OperationDefinitionNode,
  typeFromAST,
  visit,
  BREAK,
} from 'graphql';

/**
 * A refusal of the request's input before anything runs: BAD_USER_INPUT, HTTP 400,
 * `extensions.field` naming where the problem is (never the value).
 */
export function requestInputError(field: string, message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', field, ...extensions, http: { status: 400 } } });
}

/** PostgreSQL text cannot hold NUL: true when a value (keys included) holds one anywhere. */
export function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(containsNul);
  if (value !== null && typeof value === 'object') return Object.entries(value).some(([k, v]) => k.includes('\u0000') || containsNul(v));
  return false;
}

/** Apollo hands the same DocumentNode for the same query text: the answer is kept per document. */
const nulLiterals = new WeakMap<DocumentNode, boolean>();

/** PostgreSQL text cannot hold NUL; this finds it in the query's own literals. */
function hasNulLiteral(document: DocumentNode): boolean {
  const known = nulLiterals.get(document);
  if (known !== undefined) return known;
  const found = findNulLiteral(document);
  nulLiterals.set(document, found);
  return found;
}

function findNulLiteral(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    StringValue(node) {
      if (node.value.includes('\u0000')) {
        found = true;
        return BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/**
 * Messages of coerceInputValue that describe the shape of the input (field names, type names),
 * never a value. Anything else — scalar and enum parse errors quote the value — is replaced by
 * `Expected type "<leaf type>".`
 */
const STRUCTURAL = [
  /^Field "([^"]{1,100})" is not defined by type "[^"]+"\./,
  /^Field "([^"]{1,100})" of required type "[^"]+" was not provided\./,
  /^Expected type "[^"]+" to be an object\./,
  /^Expected non-nullable type "[^"]+" not to be null\./,
  /^Exactly one key must be specified for OneOf type "[^"]+"\./,
  /^Field "([^"]{1,100})" must be non-null\./,
];

/** The input type found at `path` inside `type` (object fields by name, list items by index). */
function typeAt(type: GraphQLInputType, path: ReadonlyArray<string | number>): GraphQLInputType {
  let current = type;
  for (const segment of path) {
    let nullable = getNullableType(current);
    if (typeof segment === 'number') {
      if (isListType(nullable)) current = nullable.ofType as GraphQLInputType;
      continue;
    }
    // A list accepts a single value as a list of one: the path then has no index.
    while (isListType(nullable)) nullable = getNullableType(nullable.ofType as GraphQLInputType);
    const field = isInputObjectType(nullable) ? nullable.getFields()[segment] : undefined;
    if (field) current = field.type;
  }
  return current;
}

/** `input.resources.ramMb`, `input.tags[2]`, the same notation graphql-js uses. */
function printPath(variable: string, path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((text, segment) => (typeof segment === 'number' ? `${text}[${segment}]` : `${text}.${segment}`), variable);
}

/** The first problem with the request's variables, described by path and type only; null when they coerce. */
export function variableProblem(schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Record<string, unknown>): GraphQLError | null {
  for (const definition of operation.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    const type = typeFromAST(schema, definition.type);
    // Unknown or non-input types are validation errors graphql-js already reported.
    if (!type || !isInputType(type)) continue;
    const value = variables[name];
    if (!Object.prototype.hasOwnProperty.call(variables, name) || value === undefined) {
      if (!definition.defaultValue && isNonNullType(type)) {
        return requestInputError(name, `Variable "$${name}" of required type "${String(type)}" was not provided.`, { variable: name });
      }
      continue;
    }
    let problem: GraphQLError | null = null;
    coerceInputValue(value, type, (path, _invalid, error) => {
      if (problem) return;
      const structural = STRUCTURAL.map((pattern) => pattern.exec(error.message)).find(Boolean);
      // Unknown and missing fields are reported on their parent: the path names the field itself.
      const fieldPath = structural?.[1] !== undefined && !/must be non-null/.test(structural[0]) ? [...path, structural[1]] : path;
      const description = structural ? structural[0] : `Expected type "${getNamedType(typeAt(type, path)).name}".`;
      const where = fieldPath.length > 0 ? ` at "${printPath(name, fieldPath)}"` : '';
      problem = requestInputError(fieldPath.length > 0 ? printPath('', fieldPath).replace(/^\./, '') : name, `Variable "$${name}" got invalid value${where}; ${description}`, { variable: name });
    });
    if (problem) return problem;
  }
  return null;
}

/**
 * Checks the request's input before execution, at one place for every input:
 * - a NUL character in a string literal of the query or in the decoded variables is
 *   BAD_USER_INPUT (it would break the request's transaction in PostgreSQL);
 * - variables are coerced here first, so a coercion error names the path, the field and the
 *   problem but never the value (graphql-js would print the whole variable, secrets included,
 *   and suggest field names).
 */
export function inputGuardPlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation, request, schema }) {
          if (hasNulLiteral(document)) throw requestInputError('query', 'Input must not contain NUL characters');
          // Decoded variables (a GET request's arrive as JSON text, which the HTTP edge cannot see through).
          if (containsNul(request.variables) || containsNul(request.extensions)) throw requestInputError('variables', 'Input must not contain NUL characters');
          const problem = operation ? variableProblem(schema, operation, request.variables ?? {}) : null;
          if (problem) throw problem;
        },
      };
    },
  };
}

/**
 * The last line of defence at the error boundary: graphql-js messages that print a client's
 * value ("got invalid value …", "found …", "cannot represent …: …", "Value … does not exist")
 * are cut before the value, and field suggestions are dropped.
 */
export function withoutEchoedInput(message: string): string {
  return message
    // graphql-js prints the value right after "value "; this guard's own messages go on with ` at "` or `;`.
    .replace(/^(Variable "\$[^"]+" got invalid value)(?! at "|;).*$/s, '$1.')
    .replace(/^(Expected value of type "[^"]+"), found .*$/s, '$1.')
    .replace(/^(Argument "[^"]+" has invalid value) .*$/s, '$1.')
    // "Int cannot represent non-integer value: <value>" keeps the words before the colon.
    .replace(/^(.*?) cannot represent (.*)$/s, (_all, subject: string, rest: string) => {
      const problem = /^([^:"]*): /.exec(rest)?.[1];
      return `${subject} cannot represent ${problem ?? 'the given value'}.`;
    })
    .replace(/^Value .* does not exist in ("[^"]+" enum)\..*$/s, 'Value does not exist in $1.')
    // graphql-js suggests names; armor replaces the suggestion by "[Suggestion hidden]?".
    .replace(/ (Did you mean .*|\[Suggestion hidden\]\??)$/s, '');
}
