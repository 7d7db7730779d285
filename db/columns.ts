import { customType } from "drizzle-orm/mysql-core";

/**
 * MariaDB stores JSON as LONGTEXT and hands it back as a string, while MySQL hands back
 * parsed objects. Every JSON column goes through this one type so both servers read the same.
 */
export const jsonColumn = <T>(name: string) =>
  customType<{ data: T; driverData: string }>({
    dataType: () => "json",
    toDriver: (value) => JSON.stringify(value),
    fromDriver: (value) => (typeof value === "string" ? (JSON.parse(value) as T) : (value as T)),
  })(name);

/**
 * Names and paths compare byte for byte, as the function engine compares them. The server's
 * default collation folds case, which would make `/Hello` and `/hello` collide in a unique key.
 */
export const asciiColumn = (name: string, length: number) =>
  customType<{ data: string; driverData: string }>({
    dataType: () => `varchar(${length}) CHARACTER SET ascii COLLATE ascii_bin`,
  })(name);
