// Strings of the staff console.
export const staffEn = {
  staffNav: "Staff console sections",
};

export const staffZhHant: Record<keyof typeof staffEn, string> = {
  staffNav: "職員控制台項目",
};
