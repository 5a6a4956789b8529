//! The abstract syntax tree the parser produces and the compiler consumes.
//!
//! Every statement and expression carries the byte span it came from, so any
//! later error (compile or runtime) can point at the source.

use crate::lexer::Span;
use std::rc::Rc;

#[derive(Debug, Clone)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum StmtKind {
    /// `runtime js;`, `gil off;`, `gil switch 5ms;`, `cores 2;`
    Directive {
        name: String,
        args: Vec<DirectiveArg>,
    },
    Let {
        name: String,
        name_span: Span,
        value: Expr,
    },
    Assign {
        target: Expr,
        value: Expr,
    },
    /// `x += e`, `m.k -= e`, `xs[i] *= e`, `x /= e`.
    CompoundAssign {
        target: Expr,
        op: BinaryOp,
        value: Expr,
    },
    /// `let [a, b] = e;`, `let {id, name: n} = e;`
    Destructure {
        pattern: Pattern,
        value: Expr,
    },
    Expr(Expr),
    Fn(Rc<FnDecl>),
    If {
        cond: Expr,
        then: Block,
        otherwise: Option<Block>,
    },
    While {
        cond: Expr,
        body: Block,
    },
    For {
        var: String,
        var_span: Span,
        iter: ForIter,
        body: Block,
    },
    Break,
    Continue,
    Return(Option<Expr>),
    Throw(Expr),
    Try {
        body: Block,
        catch: Option<(String, Block)>,
        /// `catch e: KindA | KindB { … }`: the error kinds caught (empty
        /// for a bare `catch e`).
        catch_kinds: Vec<String>,
        finally: Option<Block>,
    },
    Block(Block),
    /// A statement the parser could not make sense of (already reported).
    Error,
}

/// The left side of a destructuring `let`.
#[derive(Debug, Clone)]
pub enum Pattern {
    Name(String, Span),
    /// `[a, b, …]`: elements by position (missing ones are nil).
    List(Vec<Pattern>),
    /// `{key, key: pattern, …}`: fields by name (missing ones are nil).
    Map(Vec<(String, Pattern)>),
}

#[derive(Debug, Clone)]
pub enum DirectiveArg {
    Word(String),
    Number(f64),
}

#[derive(Debug, Clone)]
pub enum ForIter {
    Range(Expr, Expr),
    Each(Expr),
}

pub type Block = Vec<Stmt>;

#[derive(Debug, Clone)]
pub struct FnDecl {
    pub name: Option<String>,
    pub params: Vec<String>,
    pub body: Block,
    pub is_async: bool,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A duration literal, in milliseconds.
    Duration(f64),
    Str(String),
    /// A template literal: `` `total ${x}` ``.
    Template(Vec<TemplatePart>),
    Ident(String),
    List(Vec<Expr>),
    Map(Vec<(String, Expr)>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Vec<Expr>),
    Index(Box<Expr>, Box<Expr>),
    Field(Box<Expr>, String),
    Fn(Rc<FnDecl>),
    Await(Box<Expr>),
    Spawn(Box<Expr>),
    /// An expression the parser could not make sense of (already reported).
    Error,
}

#[derive(Debug, Clone)]
pub enum TemplatePart {
    Text(String),
    Expr(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
        }
    }
}
