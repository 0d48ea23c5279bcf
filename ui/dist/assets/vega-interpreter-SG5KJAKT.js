import{a}from"./chunk-ZGPVPJFF.js";import"./chunk-SHDSSOQO.js";import"./chunk-C3YIYIYO.js";export{a as expressionInterpreter};
