export const GENERATED: URL;
export function renderTypes(schema: object): Promise<string>;
