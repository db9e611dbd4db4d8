// Renders the service's OpenAPI document as TypeScript (openapi-typescript), the one
// way both `npm run generate` and the schema drift test produce src/generated/openapi.ts.
import openapiTS, { astToString } from "openapi-typescript";

export const GENERATED = new URL("../src/generated/openapi.ts", import.meta.url);

const HEADER = `/**
 * Generated from the service's OpenAPI document by openapi-typescript.
 * Do not edit: run \`npm run generate\` (see README.md, "Regenerating the types").
 */

`;

/** @param {object} schema the OpenAPI document as parsed JSON */
export async function renderTypes(schema) {
  const ast = await openapiTS(structuredClone(schema), {
    alphabetize: true,
    exportType: true,
    // a field with a default is optional to send (NewSession's duration_s, resolution,
    // style): openapi-typescript would otherwise make it required in request bodies too
    defaultNonNullable: false,
  });
  return HEADER + astToString(ast);
}
