// Strings of the student pages (the dashboard, form, uploads, inbox and card).
export const studentEn = {
  studentNav: "Registration sections",
};

export const studentZhHant: Record<keyof typeof studentEn, string> = {
  studentNav: "註冊項目",
};
