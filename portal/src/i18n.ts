// Every user-facing string, in English and Traditional Chinese.
import { staffEn, staffZhHant } from "./strings/staff";
import { studentEn, studentZhHant } from "./strings/student";

export type Language = "en" | "zh-Hant";

const common = {
  appTitle: "Online Program Registration",
  skipToContent: "Skip to main content",
  language: "Language",
  switchTo: "中文",
  signIn: "Sign in",
  signOut: "Sign out",
  signInJupas: "JUPAS entrants",
  signInJupasHelp: "Use the details of your JUPAS application.",
  jupasAppNo: "JUPAS application no.",
  lastName: "Last name / surname",
  firstName: "First name / given names",
  dateOfBirth: "Date of birth (DD/MM/YYYY)",
  signInAccount: "University account or staff",
  signInAccountHelp: "After activating your account, sign in with your university email.",
  email: "Email address",
  password: "Password",
  totp: "One-time code (staff with two-step verification)",
  accessDenied: "Access denied. Check your details and try again.",
  working: "Please wait…",
  required: "This field is required.",
  dobFormat: "Enter the date as DD/MM/YYYY, e.g. 05/11/2007.",
  appNoFormat: "The JUPAS application number has 8 digits.",
  activateTitle: "Activate your university account",
  activateHelp: "Choose a password for your university account. The link in your invitation works once.",
  newPassword: "New password",
  confirmPassword: "Confirm the password",
  passwordsDiffer: "The two passwords are not the same.",
  activate: "Activate",
  activated: "Your account is active. Your university email is {email}.",
  missingToken: "This page needs the activation link from your invitation email.",
  activatedSignedIn: "Your account is active and you are signed in. From now on, sign in with your university email {email}.",
  goToSignIn: "Go to sign in",
  continueToRegistration: "Continue to your registration",
  welcome: "Signed in",
  signedInAs: "Signed in as {who}",
  role_student: "Student",
  role_registry_officer: "Registry officer",
  role_card_office: "Card office",
  role_admin: "Administrator",
  sessionExpired: "Your session has ended. Please sign in again.",
  notFound: "This page does not exist.",
  error: "Something went wrong: {detail}",
  myRegistration: "My registration",
  status: "Status",
  status_in_progress: "In Progress",
  status_completed: "Completed",
  status_incomplete: "Incomplete",
  status_withdrawn: "Withdrawn",
  statusChanged: "Your status is now: {status}",
  deadline: "Registration deadline: {date}",
  termStart: "Term starts: {date}",
  checklist: "Checklist",
  step: "Step",
  kind: "Kind",
  dueBy: "Due by",
  state: "State",
  compulsory: "Compulsory",
  supplementary: "Supplementary",
  state_missing: "Not yet done",
  state_uploaded: "Received, being checked",
  state_verified: "Verified",
  state_rejected: "Rejected",
  rejectedBecause: "Reason: {reason}",
  lastUpdated: "Updated {time}",
};

const en = { ...common, ...studentEn, ...staffEn };

export type Key = keyof typeof en;

const commonZhHant: Record<keyof typeof common, string> = {
  appTitle: "網上課程註冊",
  skipToContent: "跳至主要內容",
  language: "語言",
  switchTo: "English",
  signIn: "登入",
  signOut: "登出",
  signInJupas: "經大學聯招（JUPAS）入學的學生",
  signInJupasHelp: "請使用你的大學聯招申請資料。",
  jupasAppNo: "JUPAS 申請編號",
  lastName: "姓氏",
  firstName: "名字",
  dateOfBirth: "出生日期（日/月/年，DD/MM/YYYY）",
  signInAccount: "大學帳戶或職員",
  signInAccountHelp: "啟用帳戶後，請以大學電郵地址登入。",
  email: "電郵地址",
  password: "密碼",
  totp: "一次性驗證碼（已啟用雙重驗證的職員）",
  accessDenied: "拒絕存取。請檢查你輸入的資料後再試。",
  working: "請稍候…",
  required: "此欄必須填寫。",
  dobFormat: "請以 DD/MM/YYYY 格式輸入日期，例如 05/11/2007。",
  appNoFormat: "JUPAS 申請編號為 8 位數字。",
  activateTitle: "啟用你的大學帳戶",
  activateHelp: "請為你的大學帳戶設定密碼。邀請電郵中的連結只可使用一次。",
  newPassword: "新密碼",
  confirmPassword: "確認密碼",
  passwordsDiffer: "兩次輸入的密碼不相同。",
  activate: "啟用",
  activated: "你的帳戶已啟用。你的大學電郵地址是 {email}。",
  missingToken: "此頁需要使用邀請電郵中的啟用連結。",
  activatedSignedIn: "你的帳戶已啟用，你已登入。日後請以大學電郵地址 {email} 登入。",
  goToSignIn: "前往登入",
  continueToRegistration: "繼續辦理註冊",
  welcome: "已登入",
  signedInAs: "登入身分：{who}",
  role_student: "學生",
  role_registry_officer: "教務處職員",
  role_card_office: "學生證辦事處職員",
  role_admin: "系統管理員",
  sessionExpired: "你的登入已過期，請重新登入。",
  notFound: "此頁並不存在。",
  error: "發生錯誤：{detail}",
  myRegistration: "我的註冊",
  status: "狀態",
  status_in_progress: "處理中",
  status_completed: "已完成",
  status_incomplete: "未完備",
  status_withdrawn: "已撤銷",
  statusChanged: "你的註冊狀態已更新為：{status}",
  deadline: "註冊截止：{date}",
  termStart: "開課日期：{date}",
  checklist: "註冊事項",
  step: "事項",
  kind: "類別",
  dueBy: "限期",
  state: "進度",
  compulsory: "必須",
  supplementary: "補交",
  state_missing: "尚未完成",
  state_uploaded: "已收到，審核中",
  state_verified: "已核實",
  state_rejected: "不獲接納",
  rejectedBecause: "原因：{reason}",
  lastUpdated: "更新於 {time}",
};

const zhHant: Record<Key, string> = { ...commonZhHant, ...studentZhHant, ...staffZhHant };

const dictionaries: Record<Language, Record<Key, string>> = { en, "zh-Hant": zhHant };
const STORAGE_KEY = "opr.language";

export function initialLanguage(): Language {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === "en" || saved === "zh-Hant") return saved;
  return navigator.language.toLowerCase().startsWith("zh") ? "zh-Hant" : "en";
}

export function rememberLanguage(language: Language): void {
  localStorage.setItem(STORAGE_KEY, language);
  document.documentElement.lang = language;
}

export function translate(language: Language, key: Key, vars: Record<string, string> = {}): string {
  return dictionaries[language][key].replace(/\{(\w+)\}/g, (_, name: string) => vars[name] ?? "");
}
