/** Stylesheets imported for their side effect; Vite adds them to the page with their chunk. */
declare module "*.css";
